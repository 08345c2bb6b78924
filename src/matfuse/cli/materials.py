"""``relax``: relax crystal structures with a pretrained potential."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from matfuse.cli.common import (
    AllowInvalidOption,
    InputColOption,
    app,
    console,
    err_console,
    exit_for_rows,
    write_output,
)


@app.command()
def relax(
    inputs: Annotated[
        list[Path], typer.Argument(help="Structure files (CIF, POSCAR, extxyz) or one table.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for relaxed CIFs and summary.csv.")
    ] = Path("relaxed"),
    input_col: InputColOption = None,
    fmax: Annotated[float, typer.Option(help="Force threshold, eV/Å.")] = 0.1,
    steps: Annotated[int, typer.Option(help="Maximum optimiser steps.")] = 500,
    fixed_cell: Annotated[
        bool, typer.Option("--fixed-cell", help="Relax positions only, keep the cell.")
    ] = False,
    threads: Annotated[int, typer.Option(help="CPU threads for CHGNet.")] = 1,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Relax crystal structures with the pretrained CHGNet potential (offline).

    Writes one relaxed CIF per input and summary.csv with, before and after, the energy
    per atom, volume, lattice and space group, plus the steps, convergence and a per-row
    error; warns when the symmetry drops or the volume changes by more than 10 %. A table
    (CSV with a cif column) relaxes every row. Exit status 3 when some rows failed.
    """
    from matfuse.inputs.writers import write_text
    from matfuse.materials.energy import energies_per_atom, load_chgnet, relax_structures
    from matfuse.materials.structures import parse_structures
    from matfuse.materials.symmetry import cell_change, lattice_label, space_group_label

    if len(inputs) == 1 and inputs[0].suffix.lower() in (".csv", ".tsv", ".parquet", ".gz"):
        from matfuse.inputs import load_input_table

        table = load_input_table(inputs[0], input_type="structure", input_col=input_col)
        names = [f"row{i:05d}" for i in range(len(table))]
        items: list = list(table.inputs)
    else:
        names = [p.stem for p in inputs]
        items = list(inputs)
    parsed = parse_structures(items)
    model = load_chgnet()
    before, _, _ = energies_per_atom(parsed, model=model, n_threads=threads)
    results = relax_structures(
        parsed, fmax=fmax, steps=steps, relax_cell=not fixed_cell, model=model, n_threads=threads
    )
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    notes: list[str] = []
    for name, initial, e0, r in zip(names, parsed.structures, before, results, strict=True):
        cif = None
        row: dict[str, Any] = {
            "input": name,
            "formula": r.structure.composition.reduced_formula if r.structure else None,
            "energy_per_atom_initial": e0,
            "energy_per_atom_relaxed": r.energy_per_atom,
        }
        if r.structure is not None and initial is not None:
            cif = out / f"{name}_relaxed.cif"
            write_text(r.structure.to(fmt="cif"), cif)  # atomic: kill -9 leaves no half CIF
            change = cell_change(initial, r.structure)
            row |= {
                "volume_initial": change.volume_before,
                "volume_relaxed": change.volume_after,
                "volume_change": change.volume_change,
                "lattice_initial": lattice_label(change.lattice_before),
                "lattice_relaxed": lattice_label(change.lattice_after),
                "spacegroup_initial": space_group_label(change.symmetry_before),
                "spacegroup_relaxed": space_group_label(change.symmetry_after),
                "warning": "; ".join(change.warnings) or None,
            }
            notes += [f"{name}: {w}" for w in change.warnings]
        rows.append(
            row
            | {
                "converged": r.converged,
                "steps": r.n_steps,
                "relaxed_cif": None if cif is None else cif.name,
                "error": r.error,
            }
        )
    summary = pd.DataFrame(rows)
    write_output(summary, out / "summary.csv")
    _print_relax_summary(summary)
    for note in notes:
        err_console.print(f"[yellow]warning:[/yellow] {escape(note)}")
    n_bad = int(summary["error"].notna().sum())
    err_console.print(f"{len(summary)} structures, {n_bad} failed -> {out}")
    exit_for_rows(n_bad, allow_invalid)


def _print_relax_summary(summary: pd.DataFrame) -> None:
    """Each structure as a few before/after lines, at the terminal width (all: summary.csv)."""
    table = Table(title="relaxation")
    table.add_column("input", no_wrap=True)
    table.add_column("quantity", no_wrap=True)
    table.add_column("before")
    table.add_column("after")
    for i, row in enumerate(summary.to_dict("records")):
        name = escape(str(row["input"]))
        if i:
            table.add_section()
        if isinstance(row.get("error"), str):
            table.add_row(name, "error", "", f"[red]{escape(row['error'])}[/red]")
            continue
        lines = [
            (
                "energy/atom (eV)",
                f"{row['energy_per_atom_initial']:.3f}",
                f"{row['energy_per_atom_relaxed']:.3f}",
            ),
        ]
        if "volume_initial" in row and pd.notna(row["volume_initial"]):
            lengths0, angles0 = str(row["lattice_initial"]).split(", ")
            lengths1, angles1 = str(row["lattice_relaxed"]).split(", ")
            lines += [
                (
                    "volume (Å³)",
                    f"{row['volume_initial']:.2f}",
                    f"{row['volume_relaxed']:.2f} ({row['volume_change']:+.1%})",
                ),
                ("space group", row["spacegroup_initial"], row["spacegroup_relaxed"]),
                ("a b c", lengths0, lengths1),
                ("α β γ", angles0, angles1),
            ]
        converged = "yes" if row["converged"] else "[yellow]no[/yellow]"
        lines.append(("converged", "", f"{converged} ({row['steps']} steps)"))
        for j, (what, before, after) in enumerate(lines):
            label = f"{name} ({escape(str(row['formula']))})" if j == 0 else ""
            table.add_row(
                label,
                what,
                escape(str(before)),
                after if what == "converged" else escape(str(after)),
            )
    console.print(table)
