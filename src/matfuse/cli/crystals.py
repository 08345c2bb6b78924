"""``csp``: crystal structure prediction for one composition (random search, ion exchange,
evolutionary search, Bayesian optimisation)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from matfuse.cli.common import app, err_console, user_errors


def parse_z(text: str) -> tuple[int, int]:
    """``"2"`` -> (2, 2), ``"1-4"`` -> (1, 4); ``ValueError`` for anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m:
        raise ValueError(f"--z {text!r}: expected N or MIN-MAX formula units, e.g. 1-4")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if lo < 1 or hi < lo:
        raise ValueError(f"--z {text!r}: need 1 <= MIN <= MAX")
    return lo, hi


@app.command()
def csp(
    formula: Annotated[str, typer.Argument(help="Composition, e.g. NaCl, SrTiO3, C8.")],
    z: Annotated[
        str, typer.Option("--z", help="Formula units per cell, N or MIN-MAX (C8 --z 1: 8 atoms).")
    ] = "1-4",
    strategy: Annotated[
        str, typer.Option("--strategy", help="Generator: random|substitution|mixed|ea|bo.")
    ] = "random",
    budget: Annotated[int, typer.Option("--budget", help="Relaxations to spend.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the candidate stream.")] = 0,
    relax_steps: Annotated[
        int, typer.Option("--relax-steps", help="FIRE steps per relaxation.")
    ] = 200,
    fmax: Annotated[float, typer.Option(help="Force threshold, eV/Å.")] = 0.1,
    max_atoms: Annotated[int, typer.Option(help="Most atoms per cell.")] = 40,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            help="Known structure (CIF/POSCAR) to substitute on and to put on the hull; repeat.",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for CHGNet.")] = 1,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (rerun to resume).")
    ] = Path("csp"),
) -> None:
    """Predict the crystal structure of FORMULA: propose, relax with CHGNet, rank by energy.

    Writes DIR/candidates.csv (best first: cif, energy_per_atom, e_above_hull, spacegroup,
    formula, origin, rmsd, potential), DIR/cifs/, DIR/energy_vs_evaluation.png and the
    journal that lets a rerun of the same command resume where it stopped. The hull is made
    of elemental references and the run's own phases, all relaxed with CHGNet (a proxy for DFT).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from matfuse.crystals.generators import GENERATORS, check_composition

    with user_errors():
        z_range = parse_z(z)
        check_composition(formula, z_range, max_atoms)
        GENERATORS.resolve(strategy)
        if budget < 1:
            raise ValueError(f"--budget {budget}: need at least 1 relaxation")
        refs = []
        if reference:
            from matfuse.materials.structures import to_structure

            for path in reference:
                s, err = to_structure(path)
                if s is None:
                    raise ValueError(f"--reference {path}: {err}")
                refs.append(s)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")

    from matfuse.crystals.search import crystal_structure_prediction

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}  {task.fields[origin]}"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(f"csp {formula}", total=budget, best="-", origin="")

        def on_progress(n: int, total: int, best: float, origin: str) -> None:
            shown = f"{best:.4f} eV/atom" if best != float("inf") else "-"
            progress.update(task, completed=n, best=shown, origin=origin[:50])

        with user_errors():  # a directory holding another search is refused before relaxing
            result = crystal_structure_prediction(
                formula,
                z=z_range,
                strategy=strategy,
                budget=budget,
                seed=seed,
                relax_steps=relax_steps,
                out_dir=out,
                on_progress=on_progress,
                fmax=fmax,
                references=refs,
                max_atoms=max_atoms,
                n_threads=threads,
            )
    best = result.best
    summary = (
        f"{result.n_relaxations} relaxations ({result.n_resumed} resumed, {result.n_failed} "
        f"failed), {len(result.unique)} unique -> {out}/candidates.csv"
    )
    if best is not None:
        summary += (
            f"; best {best.energy_per_atom:.4f} eV/atom {best.spacegroup} ({best.origin}), "
            f"{result.potential}"
        )
    err_console.print(summary)
