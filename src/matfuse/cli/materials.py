"""``relax``: relax crystal structures with a pretrained potential."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

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

    Writes one relaxed CIF per input and ``summary.csv`` with the energy per atom before
    and after, the number of steps, convergence and a per-row error. A table (CSV with a
    ``cif`` column) relaxes every row. Exit status 3 when some rows failed.
    """
    from matfuse.materials.energy import energies_per_atom, load_chgnet, relax_structures

    if len(inputs) == 1 and inputs[0].suffix.lower() in (".csv", ".tsv", ".parquet", ".gz"):
        from matfuse.inputs import load_input_table

        table = load_input_table(inputs[0], input_type="structure", input_col=input_col)
        names = [f"row{i:05d}" for i in range(len(table))]
        items: list = list(table.inputs)
    else:
        names = [p.stem for p in inputs]
        items = list(inputs)
    model = load_chgnet()
    before, _, _ = energies_per_atom(items, model=model, n_threads=threads)
    results = relax_structures(
        items, fmax=fmax, steps=steps, relax_cell=not fixed_cell, model=model, n_threads=threads
    )
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, e0, r in zip(names, before, results, strict=True):
        cif = None
        if r.structure is not None:
            cif = out / f"{name}_relaxed.cif"
            r.structure.to(filename=str(cif))
        rows.append(
            {
                "input": name,
                "formula": r.structure.composition.reduced_formula if r.structure else None,
                "energy_per_atom_initial": e0,
                "energy_per_atom_relaxed": r.energy_per_atom,
                "converged": r.converged,
                "steps": r.n_steps,
                "relaxed_cif": None if cif is None else cif.name,
                "error": r.error,
            }
        )
    summary = pd.DataFrame(rows)
    write_output(summary, out / "summary.csv")
    console.print(summary.drop(columns=["relaxed_cif"]).to_string(index=False))
    n_bad = int(summary["error"].notna().sum())
    err_console.print(f"{len(summary)} structures, {n_bad} failed -> {out}")
    exit_for_rows(n_bad, allow_invalid)
