"""``matfuse screen``: a library of any size through a model, on a Dask cluster, resumable."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from matfuse.cli.common import (
    AllowInvalidOption,
    InputColOption,
    app,
    err_console,
    exit_for_rows,
    show_progress,
    user_errors,
)
from matfuse.inputs.readers import DEFAULT_PARTITION_ROWS


@app.command()
def screen(
    model_dir: Annotated[Path, typer.Argument(help="Directory written by `matfuse train`.")],
    library: Annotated[
        str,
        typer.Argument(
            help="A table file (.csv, .tsv, .smi, .sdf, .parquet, .gz allowed), a directory "
            "of them, or a quoted glob such as 'lib/*.csv.gz'."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output directory: predictions/*.parquet, top.csv, run.json."
        ),
    ],
    top: Annotated[
        int, typer.Option("--top", min=1, metavar="K", help="Rows kept in top.csv.")
    ] = 100,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="COLUMN",
            help="Rank by this column (default: `pred_<target>` of the first target).",
        ),
    ] = None,
    ascending: Annotated[
        bool, typer.Option("--ascending", help="Smallest values first (default: largest).")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, metavar="N", help="Local worker processes (default: up to 2)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Address of a running Dask scheduler (e.g. tcp://head:8786) instead of a "
            "local cluster; its workers must see the model and library at the same paths.",
        ),
    ] = None,
    partition_rows: Annotated[
        int,
        typer.Option(
            "--partition-rows",
            min=1,
            metavar="ROWS",
            help="Rows per partition: one task, one output file.",
        ),
    ] = DEFAULT_PARTITION_ROWS,
    input_col: InputColOption = None,
    allow_invalid: AllowInvalidOption = False,
) -> None:
    """Predict every row of a library in partitions on Dask workers, then rank the best.

    Each partition is read, predicted and written by a worker (the model is loaded once per
    worker) to `OUT/predictions/part-<file>-<chunk>.parquet`, with a `row_id` column and an
    `error` for invalid rows; `OUT/top.csv` holds the --top best rows. A rerun with the same
    options skips finished partitions and writes the same bytes. Exit status 3 when some
    rows could not be predicted (0 with --allow-invalid), 2 for a user error.
    """
    from matfuse.workflow.screen import plan_screen, run_screen

    with user_errors():
        plan = plan_screen(
            model_dir,
            library,
            out,
            top=top,
            by=by,
            ascending=ascending,
            partition_rows=partition_rows,
            input_col=input_col or None,
        )
    with _partition_progress(len(plan.partitions)) as advance:
        result = run_screen(plan, workers=workers, scheduler=scheduler, on_progress=advance)
    err_console.print(
        f"{result.rows} rows screened, {result.invalid} invalid, {result.partitions} partitions "
        f"({result.resumed} resumed), {result.rows_per_second:,.0f} rows/s -> {out}",
        soft_wrap=True,
    )
    exit_for_rows(result.invalid, allow_invalid)


@contextmanager
def _partition_progress(total: int) -> Iterator[Callable[[int, int], None]]:
    """A bar of partitions with rows/s and ETA on stderr when a terminal (and not --quiet)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("partitions"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not show_progress(),
    ) as progress:
        task = progress.add_task("screen", total=total, rate="")
        started = time.perf_counter()

        def advance(partitions: int, rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=partitions, rate=f"{rate:,.0f} rows/s")

        yield advance
