"""What every command shares: the app, consoles, options, user-error handling, exit codes.

User errors (a missing column, an unknown encoder, an output name we cannot write) are
caught around each command's setup by :func:`user_errors`: one line on stderr, exit 2, and
nothing written. Library exceptions carry data, not CLI flag names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="matfuse: represent, fuse, learn, evaluate and generate molecules and materials.",
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _configure(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what each step does.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    """matfuse: represent, fuse, learn, evaluate and generate molecules and materials."""
    level = logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    root = logging.getLogger("matfuse")
    root.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=err_console, show_path=False, show_time=False))
    root.propagate = False


def _kinds_help() -> str:
    from matfuse.inputs import KINDS

    return (
        f"auto|{KINDS.help()}, or kinds joined with + for a table with several input "
        "columns (auto: from column names, then content; see `matfuse kinds`)."
    )


def _splits_help() -> str:
    from matfuse.evaluate.splitters import SPLITTERS

    return (
        f"auto|{SPLITTERS.help()} (those that apply to the input kind; see `matfuse "
        "splitters`); options go in --split-param."
    )


InputTypeOption = Annotated[str, typer.Option("--input-type", help=_kinds_help())]
InputColOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input-col",
        "--smiles-col",
        help="Column holding SMILES, formulas or CIF/POSCAR text or paths (auto-detected); "
        "repeat for a table with several modalities (e.g. formula and cif).",
    ),
]
#: Exit status of a batch command that wrote every row but could not process some of them.
EXIT_INVALID_ROWS = 3
AllowInvalidOption = Annotated[
    bool,
    typer.Option(
        "--allow-invalid",
        help=f"Exit 0 even when some rows are invalid (default: exit {EXIT_INVALID_ROWS}).",
    ),
]
SPLIT_HELP = _splits_help()
SplitParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--split-param",
        help="Splitter option KEY=VALUE, repeatable (e.g. element=Fe, tail=bottom, cutoff=0.4).",
    ),
]


def user_error_types() -> tuple[type[BaseException], ...]:
    from matfuse.inputs.writers import UnsupportedFormatError
    from matfuse.registry import UnknownNameError

    return (
        UnknownNameError,
        UnsupportedFormatError,
        KeyError,
        ValueError,
        FileNotFoundError,
        TypeError,
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """Around a command's setup (reading, validating): a user error is one line and exit 2."""
    from rich.markup import escape

    try:
        yield
    except user_error_types() as err:
        text = str(err.args[0]) if type(err) is KeyError and err.args else str(err)
        err_console.print(f"[red]error:[/red] {escape(' '.join(text.split()))}", soft_wrap=True)
        raise typer.Exit(2) from None


def split_params(values: list[str] | None) -> dict[str, Any]:
    from matfuse.registry import parse_value

    params: dict[str, Any] = {}
    for value in values or []:
        if "=" not in value:
            raise ValueError(f"--split-param {value!r}: expected KEY=VALUE")
        key, text = value.split("=", 1)
        params[key.strip()] = parse_value(text)
    return params


def check_out(out: Path) -> None:
    """Refuse an output path we cannot write before any work is done."""
    from matfuse.inputs.writers import table_format

    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name")
    table_format(out)


def exit_for_rows(n_bad: int, allow_invalid: bool) -> None:
    """Batch commands write every row; the exit status says whether some were invalid."""
    if n_bad and not allow_invalid:
        raise typer.Exit(EXIT_INVALID_ROWS)


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def write_output(frame: pd.DataFrame, out: Path) -> None:
    from matfuse.inputs.writers import write_table

    write_table(frame, out)


def fmt(v: object) -> str:
    if isinstance(v, float | int) and np.isfinite(v):
        return f"{v:.3f}"
    return "-"
