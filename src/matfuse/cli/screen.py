"""``matfuse screen``: a library of any size through a model, on a Dask cluster, resumable."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from matfuse.workflow.screen import Failure

#: Exit status when some rows are in no output (a file or partition failed; see failed.csv).
EXIT_FAILED_PARTS = 4

WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, metavar="N", help="Local worker processes (default: up to 2)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        help="Address of a running Dask scheduler (e.g. tcp://head:8786) instead of a "
        "local cluster; its workers must see the model and inputs at the same paths.",
    ),
]


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
            help="Rank by this column (default: `objective` with --objective, else "
            "`pred_<target>` of the first target).",
        ),
    ] = None,
    objective: Annotated[
        Path | None,
        typer.Option(
            "--objective",
            "-f",
            metavar="SPEC",
            help="Objective spec (YAML/JSON, as `matfuse generate`): adds <term>_d and "
            "`objective` columns and ranks top.csv by `objective`; a `property: model` term "
            "naming this model reads its predictions, e.g. p(min <= y <= max) from its std.",
        ),
    ] = None,
    ascending: Annotated[
        bool, typer.Option("--ascending", help="Smallest values first (default: largest).")
    ] = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
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
    rows could not be predicted (0 with --allow-invalid), 4 when rows are missing from the
    output (a file that cannot be read, a partition that failed: see OUT/failed.csv; a
    rerun retries them), 2 for a user error.
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
            objective=objective,
        )
    with _partition_progress(len(plan.partitions)) as advance:
        result = run_screen(plan, workers=workers, scheduler=scheduler, on_progress=advance)
    err_console.print(
        f"{result.rows} rows screened, {result.invalid} invalid, {result.partitions} partitions "
        f"({result.resumed} resumed), {result.rows_per_second:,.0f} rows/s -> {out}",
        soft_wrap=True,
    )
    if result.failures:
        _report_failures(result.failures, out)
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


def _report_failures(failures: Sequence[Failure], where: Path) -> None:
    lost = sum(f.rows or 0 for f in failures)
    unknown = any(f.rows is None for f in failures)
    err_console.print(
        f"warning: {len(failures)} file(s) or partition(s) failed "
        f"({lost}{'+' if unknown else ''} rows not in the output); reasons in "
        f"{where / 'failed.csv'}",
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_FAILED_PARTS)


def distributed_predict(
    model_dir: Path,
    input: Path,
    out: Path,
    rows: int,
    input_col: list[str] | None,
    workers: int | None,
    scheduler: str | None,
    allow_invalid: bool,
) -> None:
    """``matfuse predict --workers/--scheduler``: the screening engine, one table out."""
    from matfuse.workflow.distributed_table import predict_distributed

    with user_errors():
        run = predict_distributed(
            model_dir,
            input,
            out,
            rows=rows,
            input_col=input_col or None,
            workers=workers,
            scheduler=scheduler,
        )
    if run.failures:
        _report_failures(run.failures, run.work_dir)
    err_console.print(f"{run.rows} rows predicted, {run.invalid} invalid -> {out}")
    exit_for_rows(run.invalid, allow_invalid)


def distributed_featurize(
    input: Path,
    out: Path,
    encoders: list[str] | None,
    input_type: str,
    input_col: list[str] | None,
    fused: bool,
    workers: int | None,
    scheduler: str | None,
    allow_invalid: bool,
) -> None:
    """``matfuse featurize --workers/--scheduler``: raw blocks, partitions on Dask workers."""
    from matfuse.workflow.distributed_table import featurize_distributed

    with user_errors():
        if fused:
            raise ValueError(
                "--fused scales with statistics of the whole table: not with --workers/--scheduler"
            )
        run = featurize_distributed(
            input,
            out,
            encoders=encoders,
            input_type=input_type,
            rows=DEFAULT_PARTITION_ROWS // 5,
            input_col=input_col or None,
            workers=workers,
            scheduler=scheduler,
        )
    if run.failures:
        _report_failures(run.failures, run.work_dir)
    err_console.print(f"{run.rows} rows featurized, {run.invalid} invalid -> {out}")
    exit_for_rows(run.invalid, allow_invalid)
