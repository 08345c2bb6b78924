"""What every command shares: the app, consoles, options, user-error handling, exit codes.

User errors (a missing column, an unknown encoder, an output name we cannot write) are
caught around each command's setup by :func:`user_errors`: one line on stderr, exit 2, and
nothing written. Library exceptions carry data, not CLI flag names.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    # docstrings are prose: paragraphs re-wrapped at the terminal width, `code` marked
    rich_markup_mode="markdown",
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
    warnings.showwarning = _warning_line


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A library warning as one log line, without the source path and code line.

    A user of the command line cannot act on ``benchmark.py:146: UserWarning``; the
    message itself is what they need (``-v`` does not bring the path back; Python's
    ``-W error`` still turns warnings into errors for debugging).
    """
    text = " ".join(str(message).split())
    logging.getLogger("matfuse.warnings").warning("%s", text)


def _kinds_help() -> str:
    from matfuse.inputs import KINDS

    return (
        f"auto, {_choices(KINDS.help())}, or kinds joined with + for a table with several "
        "input columns (auto: from column names, then content; see `matfuse kinds`)."
    )


def _splits_help() -> str:
    from matfuse.evaluate.splitters import SPLITTERS

    return (
        f"auto, {_choices(SPLITTERS.help())} (those that apply to the input kind; see "
        "`matfuse splitters`); options go in --split-param."
    )


def _choices(names: str) -> str:
    """``a|b|c`` as ``a, b, c``: a help column wraps between words, never inside one."""
    return ", ".join(names.split("|"))


InputTypeOption = Annotated[str, typer.Option("--input-type", help=_kinds_help())]
InputColOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input-col",
        "--smiles-col",
        metavar="COLUMN",
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
        metavar="KEY=VALUE",
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


def check_options(
    path: Path,
    encoders: Sequence[str] | None,
    *,
    model: str | None = None,
    split: str | None = None,
    split_param: list[str] | None = None,
    input_type: str = "auto",
    input_col: Sequence[str] | None = None,
) -> str | None:
    """Refuse unknown or mismatched options before the data is read and parsed.

    Names are checked against the registries (encoders, models, splitters, kinds), then
    against the input kind judged from the file's first rows: one line naming the valid
    choices (``user_errors``), not a traceback after minutes of parsing. Returns that kind
    (``None`` when the first rows do not tell; the full load checks again).
    """
    from matfuse.encoders.registry import get_encoder
    from matfuse.evaluate.splitters import list_splitters, make_splitter
    from matfuse.inputs import check_encoders, check_kind
    from matfuse.models import get_spec
    from matfuse.pipeline import check_model
    from matfuse.workflow.data import SplitNotApplicableError, peek_input_type

    check_kind(input_type)
    for name in encoders or []:
        get_encoder(name)
    if model is not None:
        get_spec(model)
    params = split_params(split_param)
    if split is not None and split != "auto":
        if split != "predefined":
            make_splitter(split, **params)
        elif params:
            raise ValueError("--split-param does not apply to the predefined split")
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    kind = peek_input_type(path, input_type, list(input_col or []) or None)
    if kind is None:
        return None
    if encoders:
        check_encoders(list(encoders), kind)
    if model is not None:
        check_model(model, kind)
    if split is not None and split not in ("auto", "predefined"):
        choices = list_splitters(kind)
        if split not in choices:
            raise SplitNotApplicableError(split, kind, choices)
    return kind


def show_progress() -> bool:
    """Whether to draw progress bars: stderr is a terminal and ``--quiet`` was not given."""
    quiet = logging.getLogger("matfuse").getEffectiveLevel() >= logging.ERROR
    return not quiet and err_console.is_terminal


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


def frame_table(frame: pd.DataFrame, title: str | None = None, digits: int = 3) -> Table:
    """A data frame as a rich table that fits the terminal: cells wrap inside their column
    instead of the row wrapping mid-line, numbers get ``digits`` decimals, and missing
    values (``None``, ``NaN``) show as ``-``."""
    from rich.markup import escape

    table = Table(title=title)
    for i, col in enumerate(frame.columns):
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(escape(str(col)), justify="right" if numeric else "left", no_wrap=i == 0)
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v, digits) for v in row))
    return table


def _cell(value: object, digits: int) -> str:
    from rich.markup import escape

    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return escape(str(value))
