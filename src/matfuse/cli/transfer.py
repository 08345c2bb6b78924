"""``transfer-build`` and ``transfer-shotgun``: source libraries and shotgun transfer.

Thin layers over :mod:`matfuse.transfer`: one builds a library of source models from
property tables, the other tries every source of a library on a small target table and
saves the configuration that cross-validation picks as an ordinary model directory.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from matfuse.cli.common import app, console, err_console, user_errors

if TYPE_CHECKING:
    from matfuse.transfer.build import PropertyTable


def _command_line() -> str:
    return "matfuse " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file now, not after minutes of training."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory")


def _check_positive(**options: int | None) -> None:
    """``--max-epochs 0`` and the like: one line naming the option, not a silent no-op."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} {value}: need at least 1")


def _parse_widths(hidden: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in hidden.split(",") if w.strip())
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise ValueError(f"--hidden {hidden!r}: give positive widths, e.g. 256,64")
    return widths


#: A source needs one held-out row and two to train on (``matfuse.transfer.build``).
_MIN_SOURCE_ROWS = 3


def _check_usable_rows(table: PropertyTable) -> None:
    """A table without enough parsable formulas with numeric targets is a user error,
    said before any source trains (the builder would fail deep inside the fit)."""
    import numpy as np

    from matfuse.materials.compositions import to_composition

    usable = sum(
        to_composition(f)[0] is not None and np.isfinite(y)
        for f, y in zip(table.formulas, table.y, strict=True)
    )
    if usable < _MIN_SOURCE_ROWS:
        raise ValueError(
            f"{table.files[0]}: {usable} usable rows (a valid formula and a numeric target) "
            f"of {len(table.formulas)}; a source needs at least {_MIN_SOURCE_ROWS}"
        )


@app.command("transfer-build")
def transfer_build(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Property tables: .csv files (formula,target) or directories of them "
            "(a directory with train/val/test.csv is one table). Repeatable.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Library directory to write.")],
    max_rows: Annotated[int, typer.Option(help="Training rows per source, at most.")] = 10000,
    hidden: Annotated[
        str, typer.Option(help="Hidden widths, comma-separated; the last is the encoder width.")
    ] = "256,64",
    max_epochs: Annotated[int, typer.Option(help="Epochs per source, at most.")] = 200,
    max_minutes: Annotated[
        float | None, typer.Option(help="Wall-clock budget for all sources together.")
    ] = None,
    formula_col: Annotated[str | None, typer.Option(help="Formula column.")] = None,
    target_col: Annotated[str | None, typer.Option(help="Target column.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 1,
) -> None:
    """Train one source MLP per property table and write a library with its model card.

    Each source records its data files (sha256), rows, held-out MAE beside the mean
    predictor, CPU seconds and this command; see `matfuse.transfer.build`.
    """
    from matfuse.transfer.build import build_library, find_tables, library_card, read_table

    with user_errors():
        _check_out(out)
        _check_positive(max_epochs=max_epochs, threads=threads)
        if max_rows < 2:
            raise ValueError(f"--max-rows {max_rows}: need at least 2 training rows")
        widths = _parse_widths(hidden)
        tables = [
            read_table(files, name, formula_col, target_col) for name, files in find_tables(data)
        ]
        if not tables:
            raise ValueError("no property tables found under --data")
        for table in tables:
            _check_usable_rows(table)
    params = {"hidden": widths, "max_epochs": max_epochs, "n_threads": threads}

    def report(name: str, info: dict) -> None:
        err_console.print(
            f"{name}: {info['n_train']} rows, test MAE {info['test_mae']:.4g} "
            f"(mean predictor {info['baseline_mae']:.4g}), {info['cpu_s']} CPU s"
        )

    library = build_library(
        tables,
        max_rows=max_rows,
        params=params,
        seed=seed,
        max_minutes=max_minutes,
        command=_command_line(),
        on_source=report,
    )
    library.save(out, card=library_card(library))
    console.print(f"wrote {len(library.sources)} sources to {out}")


@app.command("transfer-shotgun")
def transfer_shotgun(
    data: Annotated[Path, typer.Argument(help="Target table (formula,target .csv).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    library: Annotated[
        str, typer.Option(help="Source library: a directory or `transfer-compositions`.")
    ] = "transfer-compositions",
    cv: Annotated[int, typer.Option(help="Cross-validation folds on the target.")] = 5,
    modes: Annotated[
        str, typer.Option(help="Candidates to try: frozen, finetune or both (comma-separated).")
    ] = "frozen,finetune",
    exclude: Annotated[
        str | None, typer.Option(help="Sources to leave out, comma-separated (besides leaked).")
    ] = None,
    finetune_top: Annotated[
        int | None,
        typer.Option(help="Fine-tune only the N sources whose frozen candidates scored best."),
    ] = None,
    formula_col: Annotated[str | None, typer.Option(help="Formula column.")] = None,
    target_col: Annotated[str | None, typer.Option(help="Target column.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Try every source (frozen encoder + the default model, and fine-tuned) on a small
    target, pick by cross-validation, refit the winner on all rows and save it.

    Sources built from the target's own data are excluded automatically. The directory
    loads with `matfuse predict`; `shotgun.json` beside it lists every candidate's CV score.
    """
    from matfuse.transfer.build import read_table
    from matfuse.transfer.library import load_library
    from matfuse.transfer.shotgun import shotgun

    with user_errors():
        _check_out(out)
        if not data.is_file():
            raise ValueError(f"{data}: no such file")
        if cv < 2:
            raise ValueError(f"--cv {cv}: need at least 2 folds")
        _check_positive(finetune_top=finetune_top)
        table = read_table([data], "target", formula_col, target_col)
        lib = load_library(library)
        chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
        result = shotgun(
            (table.formulas, table.y),
            lib,
            cv=cv,
            modes=chosen,
            exclude=tuple(e.strip() for e in (exclude or "").split(",") if e.strip()),
            finetune_top=finetune_top,
            random_state=seed,
        )
    # the report is written first: the model save carries it into its manifest
    (Path(out) / "report").mkdir(parents=True, exist_ok=True)
    (Path(out) / "report" / "shotgun.json").write_text(
        json.dumps({**result.to_dict(), "command": _command_line()}, indent=2) + "\n"
    )
    result.model.save(out)
    console.print(result.summary())
