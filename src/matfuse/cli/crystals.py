"""``csp``: crystal structure prediction for one composition (random search, ion exchange,
evolutionary search, Bayesian optimisation); ``crystal-search``: the same generators over a
chemical system, with an objective."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from matfuse.cli.common import app, err_console, user_errors
from matfuse.crystals import DEFAULT_EXPLORE_STRATEGY, DEFAULT_STRATEGY

if TYPE_CHECKING:
    from pymatgen.core import Structure


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


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int, int, float, str], None]]:
    """A rich progress bar with the running best; yields the search's ``on_progress``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}  {task.fields[origin]}"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(description, total=total, best="-", origin="")

        def on_progress(n: int, total: int, best: float, origin: str) -> None:
            shown = f"{best:.4f} eV/atom" if best != float("inf") else "-"
            progress.update(task, completed=n, best=shown, origin=origin[:50])

        try:
            yield on_progress
        except BaseException:
            progress.live.transient = True  # an error is one line: the bar is not left behind
            raise


def read_structures(path: Path, option: str) -> list[Structure]:
    """Structures from a CIF/POSCAR file, a table with a ``cif`` column, or a directory of
    CIF files (searched recursively); ``ValueError`` naming ``option`` when unreadable."""
    from matfuse.materials.structures import to_structure

    if path.is_dir():
        files = sorted(p for p in path.rglob("*.cif") if p.is_file())
        if not files:
            raise ValueError(f"{option} {path}: no CIF files in this directory")
        found = [to_structure(f)[0] for f in files]
        structures = [s for s in found if s is not None]
        if not structures:
            raise ValueError(f"{option} {path}: none of its CIF files could be read")
        return structures
    if path.suffix.lower() in (".csv", ".gz", ".parquet", ".tsv"):
        from matfuse.inputs.readers import read_table

        try:
            table = read_table(path)
        except Exception as exc:
            raise ValueError(f"{option} {path}: {exc}") from None
        if "cif" not in table.columns:
            raise ValueError(f"{option} {path}: a table needs a `cif` column")
        parsed = [to_structure(text, allow_paths=False)[0] for text in table["cif"].dropna()]
        structures = [s for s in parsed if s is not None]
        if not structures:
            raise ValueError(f"{option} {path}: no readable structure in its `cif` column")
        return structures
    structure, err = to_structure(path)
    if structure is None:
        raise ValueError(f"{option} {path}: {err}")
    return [structure]


def _check_parallel(workers: int, potential: str) -> None:
    from matfuse.crystals.search import POTENTIALS

    if workers < 1:
        raise ValueError(f"--workers {workers}: need at least 1")
    POTENTIALS.resolve(potential)


# The options csp and crystal-search share, declared once so that their names, types and
# help stay the same in both commands (defaults stay with each command).
StrategyOption = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="Generator: random, substitution, mixed, ea, bo, qubo or diffusion.",
    ),
]
BudgetOption = Annotated[int, typer.Option("--budget", help="Relaxations to spend.")]
RelaxStepsOption = Annotated[int, typer.Option("--relax-steps", help="FIRE steps per relaxation.")]
FmaxOption = Annotated[float, typer.Option(help="Force threshold, eV/Å.")]
RelaxSecondsOption = Annotated[
    float | None,
    typer.Option(
        "--relax-seconds",
        help="CPU-time limit per relaxation (s); a candidate cut short is kept, not converged.",
    ),
]
MaxAtomsOption = Annotated[int, typer.Option(help="Most atoms per cell.")]
WorkersOption = Annotated[
    int, typer.Option(help="Parallel relaxations (dask LocalCluster when > 1).")
]
SchedulerOption = Annotated[str | None, typer.Option(help="Address of an existing dask scheduler.")]
PotentialOption = Annotated[str, typer.Option(help="Interatomic potential: chgnet | sevennet.")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output directory (rerun to resume).")]


@app.command()
def csp(
    formula: Annotated[str, typer.Argument(help="Composition, e.g. NaCl, SrTiO3, C8.")],
    z: Annotated[
        str, typer.Option("--z", help="Formula units per cell, N or MIN-MAX (C8 --z 1: 8 atoms).")
    ] = "1-4",
    strategy: StrategyOption = DEFAULT_STRATEGY,
    budget: BudgetOption = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the candidate stream.")] = 0,
    relax_steps: RelaxStepsOption = 200,
    fmax: FmaxOption = 0.1,
    relax_seconds: RelaxSecondsOption = None,
    max_atoms: MaxAtomsOption = 40,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            help="Known structure (CIF/POSCAR) to substitute on and to put on the hull; repeat.",
        ),
    ] = None,
    charge_balanced: Annotated[
        bool,
        typer.Option(
            "--charge-balanced",
            help="Refuse a formula smact cannot charge-balance (common oxidation states).",
        ),
    ] = False,
    threads: Annotated[int, typer.Option(help="CPU threads for CHGNet.")] = 1,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    potential: PotentialOption = "chgnet",
    out: OutOption = Path("csp"),
) -> None:
    """Predict the crystal structure of FORMULA: propose, relax with CHGNet, rank by energy.

    Writes DIR/candidates.csv (best first: cif, energy_per_atom, e_above_hull, spacegroup,
    formula, origin, rmsd, potential), DIR/cifs/, DIR/energy_vs_evaluation.png and the
    journal that lets a rerun of the same command resume where it stopped. The hull is made
    of elemental references and the run's own phases, all relaxed with CHGNet (a proxy for DFT).
    With --workers N, N relaxations run at once; ea and bo then propose N at a time.
    """
    from matfuse.crystals.generators import (
        GENERATORS,
        check_charge_balance,
        check_composition,
    )

    with user_errors():
        z_range = parse_z(z)
        check = check_charge_balance if charge_balanced else check_composition
        check(formula, z_range, max_atoms)
        GENERATORS.resolve(strategy)
        if budget < 1:
            raise ValueError(f"--budget {budget}: need at least 1 relaxation")
        _check_parallel(workers, potential)
        if relax_seconds is not None and relax_seconds <= 0:
            raise ValueError(f"--relax-seconds {relax_seconds}: must be positive")
        refs = [s for path in reference or [] for s in read_structures(path, "--reference")]
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")

    from matfuse.crystals.search import crystal_structure_prediction

    with _progress(f"csp {formula}", budget) as on_progress:
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
                relax_seconds=relax_seconds,
                require_charge_balance=charge_balanced,
                references=refs,
                max_atoms=max_atoms,
                n_threads=threads,
                potential=potential,
                workers=workers,
                scheduler=scheduler,
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


@app.command("crystal-search")
def crystal_search(
    elements: Annotated[str, typer.Option("--elements", help="The chemical system, e.g. Li,Co,O.")],
    objective: Annotated[
        str | None,
        typer.Option(
            "--objective",
            help="Objective spec: a YAML/JSON file or inline JSON (terms e_above_hull, model, "
            "elements, spacegroup, hhi, magnetic_density).",
        ),
    ] = None,
    strategy: StrategyOption = DEFAULT_EXPLORE_STRATEGY,
    budget: BudgetOption = 30,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the candidate streams.")] = 0,
    z: Annotated[str, typer.Option("--z", help="Formula units per cell, N or MIN-MAX.")] = "1-2",
    max_atoms: MaxAtomsOption = 20,
    max_formula_atoms: Annotated[
        int, typer.Option(help="Most atoms per formula unit of an enumerated composition.")
    ] = 8,
    subsystems: Annotated[
        bool, typer.Option(help="Also search the binaries (and so on) of the system.")
    ] = True,
    alloys: Annotated[bool, typer.Option(help="Admit all-metal compositions.")] = False,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            help="Known phases (CIF/POSCAR, a table with a cif column, or a directory of CIFs) "
            "for the hull and for substitution; repeat.",
        ),
    ] = None,
    novelty_reference: Annotated[
        Path | None,
        typer.Option(
            "--novelty-reference",
            help="Structures that 'novel' is judged against (CIFs, a directory, a cif table).",
        ),
    ] = None,
    relax_steps: RelaxStepsOption = 200,
    fmax: FmaxOption = 0.1,
    relax_seconds: RelaxSecondsOption = None,
    threads: Annotated[int, typer.Option(help="CPU threads per relaxation.")] = 1,
    workers: WorkersOption = 1,
    scheduler: SchedulerOption = None,
    potential: PotentialOption = "chgnet",
    out: OutOption = Path("crystal-search"),
) -> None:
    """Explore a chemical system: enumerate charge-balanced compositions of ELEMENTS, propose
    structures for them in turn, relax, and rank by the objective (default: hull distance).

    Writes DIR/candidates.csv (cif, energy_per_atom, e_above_hull, spacegroup, formula,
    origin, stable/unique/novel/sun flags and every objective term), DIR/cifs/,
    DIR/energy_vs_evaluation.png, DIR/explore.json (counts) and the journal a rerun resumes
    from. The hull is the run's own (elements, found phases, --reference phases) with the
    chosen potential: stability here is an MLIP proxy, not DFT.
    """
    from matfuse.crystals.explore import enumerate_compositions, explore
    from matfuse.crystals.generators import GENERATORS
    from matfuse.crystals.objectives import load_crystal_objective

    with user_errors():
        z_range = parse_z(z)
        comps = enumerate_compositions(
            elements, max_formula_atoms=max_formula_atoms, subsystems=subsystems, alloys=alloys
        )
        if all(z_range[0] * c.num_atoms > max_atoms for c in comps):
            raise ValueError(f"every composition has more than {max_atoms} atoms per cell")
        GENERATORS.resolve(strategy)
        if budget < 1:
            raise ValueError(f"--budget {budget}: need at least 1 relaxation")
        _check_parallel(workers, potential)
        if relax_seconds is not None and relax_seconds <= 0:
            raise ValueError(f"--relax-seconds {relax_seconds}: must be positive")
        spec = load_crystal_objective(objective) if objective is not None else None
        refs = [s for path in reference or [] for s in read_structures(path, "--reference")]
        known = (
            read_structures(novelty_reference, "--novelty-reference")
            if novelty_reference is not None
            else None
        )
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory")

    with _progress(f"crystal-search {elements}", budget) as on_progress:
        with user_errors():
            result = explore(
                elements,
                strategy=strategy,
                budget=budget,
                seed=seed,
                objective=spec,
                out_dir=out,
                on_progress=on_progress,
                z=z_range,
                max_atoms=max_atoms,
                max_formula_atoms=max_formula_atoms,
                subsystems=subsystems,
                alloys=alloys,
                references=refs,
                novelty_reference=known,
                relax_steps=relax_steps,
                fmax=fmax,
                relax_seconds=relax_seconds,
                n_threads=threads,
                potential=potential,
                workers=workers,
                scheduler=scheduler,
            )
    counts = result.counts()
    err_console.print(
        f"{result.n_relaxations} relaxations ({result.n_resumed} resumed, {result.n_failed} "
        f"failed) over {len(result.compositions)} compositions: {counts['stable_unique']} "
        f"stable and unique (e_above_hull <= {result.stability_threshold} eV/atom, "
        f"{result.potential} hull), {counts['sun']} SUN -> {out}/candidates.csv"
    )
