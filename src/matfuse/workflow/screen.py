"""Screen a library of any size through a trained model on a ``dask.distributed`` cluster.

The library (one file, a directory or a glob of CSV/TSV/SMI/SDF/parquet files, gzipped or
not) is cut into partitions of ``partition_rows`` rows: ``(file, chunk)`` pairs, each with
the global row id of its first row. The driver only reads the files to count their rows
and find their input columns; each worker reads its own partition from the file (no data
travels through the scheduler), predicts it with
:func:`~matfuse.workflow.stream.predict_chunk` (the model loaded once per worker process)
and writes ``out/predictions/part-<file>-<chunk>.parquet`` atomically: every input row,
a ``row_id`` column first, invalid rows with their ``error``.

A rerun skips the partitions already written (``out/run.json`` says what the directory
was screened with; other options are refused), so a killed run loses only the partitions
in flight and a resumed run writes the same bytes as a fresh one. ``out/top.csv`` is then
the best ``top`` rows by a column, found by streaming over the partitions (memory: one
partition plus ``top`` rows), ties broken by ``row_id``.

>>> result = screen("model/", "library/*.csv.gz", "screen-out/", top=100)  # doctest: +SKIP
>>> result.rows, result.invalid, result.top_path  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from matfuse.inputs.readers import DEFAULT_PARTITION_ROWS, iter_table, table_ext
from matfuse.inputs.writers import write_table, write_text
from matfuse.workflow.stream import (
    InputTableError,
    _message,
    append_table,
    input_columns,
    predict_chunk,
)

if TYPE_CHECKING:
    from distributed import Client

    from matfuse.pipeline import PropertyModel

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "ROW_ID",
    "Partition",
    "ScreenOptionsError",
    "ScreenPlan",
    "ScreenResult",
    "library_files",
    "plan_screen",
    "run_screen",
    "screen",
]

#: The column giving each row's place in the library (files in order, rows in file order).
ROW_ID = "row_id"
RUN_FILE = "run.json"
PREDICTIONS_DIR = "predictions"
TOP_FILE = "top.csv"


class ScreenOptionsError(ValueError):
    """The output directory was screened with other options: a user error."""


@dataclass(frozen=True)
class Partition:
    """One worker's task: rows ``[chunk * rows, (chunk + 1) * rows)`` of one library file."""

    model_dir: str
    path: str
    file_index: int
    chunk_index: int
    rows: int
    row_offset: int
    columns: tuple[tuple[str, str], ...]
    out: str


@dataclass(frozen=True)
class ScreenPlan:
    """What :func:`plan_screen` checked: every partition, and those still to predict."""

    out_dir: Path
    partitions: tuple[Partition, ...]
    by: str
    ascending: bool
    top: int
    rows: int

    @property
    def todo(self) -> tuple[Partition, ...]:
        return tuple(p for p in self.partitions if not Path(p.out).exists())


@dataclass(frozen=True)
class ScreenResult:
    """What a screen wrote: rows, invalid rows, partitions (and how many were resumed)."""

    rows: int
    invalid: int
    partitions: int
    resumed: int
    rows_predicted: int
    seconds: float
    predictions_dir: Path
    top_path: Path

    @property
    def rows_per_second(self) -> float:
        return self.rows_predicted / self.seconds if self.seconds > 0 else 0.0


def library_files(library: str | Path) -> list[Path]:
    """The files of a library: one file, every table file in a directory, or a glob's matches.

    Sorted by name, so that row ids are the same on every run.
    """
    path = Path(library)
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file())
    else:
        candidates = sorted(Path(p) for p in glob.glob(str(library)) if Path(p).is_file())
    files = [p for p in candidates if not p.name.startswith(".") and _is_table(p)]
    if not files:
        raise FileNotFoundError(f"no table files (.csv, .tsv, .smi, .sdf, .parquet) in {library}")
    return files


def _is_table(path: Path) -> bool:
    try:
        table_ext(path)
    except ValueError:
        return False
    return True


def plan_screen(
    model_dir: str | Path,
    library: str | Path,
    out_dir: str | Path,
    *,
    top: int = 100,
    by: str | None = None,
    ascending: bool = False,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    input_col: str | Sequence[str] | None = None,
) -> ScreenPlan:
    """Check everything a screen needs before any cluster starts; raise a user error if not.

    Loads the model, counts each file's rows and finds its input columns on its first
    rows (a header-less file is refused), and records the options in ``out/run.json`` (a
    directory screened with other options raises :class:`ScreenOptionsError`).
    """
    from matfuse.pipeline import PropertyModel

    if partition_rows < 1:
        raise ValueError(f"partition rows must be at least one, not {partition_rows}")
    if top < 1:
        raise ValueError(f"top must be at least one row, not {top}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output {out} is a file, not a directory")
    model_path = Path(model_dir)
    if not model_path.is_dir():
        raise FileNotFoundError(f"no model directory {model_dir}")
    model = PropertyModel.load(model_path)
    files = library_files(library)
    ours = _model_columns(model)
    by = by or ours[0]
    parts = out.resolve() / PREDICTIONS_DIR  # absolute: a remote worker's cwd is not ours
    partitions: list[Partition] = []
    counts: list[int] = []
    offset = 0
    for file_index, path in enumerate(files):
        n, columns, names = _scan(model, path, partition_rows, input_col)
        if ROW_ID in names:
            raise ValueError(f"{path.name} has a column named {ROW_ID!r}, which screen adds")
        if by not in ours and by not in names:
            raise ValueError(
                f"cannot rank by {by!r}: neither a prediction column ({', '.join(ours)}) "
                f"nor a column of {path.name}"
            )
        for chunk_index in range(-(-n // partition_rows)):
            partitions.append(
                Partition(
                    model_dir=str(model_path.resolve()),
                    path=str(path.resolve()),
                    file_index=file_index,
                    chunk_index=chunk_index,
                    rows=partition_rows,
                    row_offset=offset + chunk_index * partition_rows,
                    columns=tuple(columns.items()),
                    out=str(parts / f"part-{file_index:05d}-{chunk_index:05d}.parquet"),
                )
            )
        offset += n
        counts.append(n)
    _record_run(out, model_path, files, counts, partition_rows)
    return ScreenPlan(
        out_dir=out, partitions=tuple(partitions), by=by, ascending=ascending, top=top, rows=offset
    )


def _model_columns(model: PropertyModel) -> list[str]:
    """The numeric columns the model adds, ``pred_<first target>`` first."""
    names = list(model.target_names_)
    return [f"{p}_{n}" for p in ("pred", "std", "lower", "upper") for n in names]


def _scan(
    model: PropertyModel, path: Path, rows: int, input_col: str | Sequence[str] | None
) -> tuple[int, dict[str, str], list[str]]:
    """A file's row count, input columns (found on its first chunk) and column names."""
    n = 0
    columns: dict[str, str] = {}
    names: list[str] = []
    try:
        with _table_chunks(path, rows) as chunks:
            for chunk in chunks:
                if not names:
                    names = [str(c) for c in chunk.columns]
                if not columns and len(chunk):
                    columns = input_columns(model, chunk, input_col, from_file=True)
                n += len(chunk)
    except (ValueError, KeyError, OSError) as err:
        raise InputTableError(f"{path.name}: {_message(err)}") from err
    return n, columns, names


def _record_run(
    out: Path, model_dir: Path, files: list[Path], counts: list[int], rows: int
) -> None:
    """Write ``run.json``, or refuse a directory screened with something else.

    Each file's size and row count are recorded too: a library file changed since the
    first run would otherwise mix old partitions with new ones.
    """
    record = {
        "model": str(model_dir.resolve()),
        "library": [
            {"path": str(p.resolve()), "bytes": p.stat().st_size, "rows": n}
            for p, n in zip(files, counts, strict=True)
        ],
        "partition_rows": rows,
    }
    text = json.dumps(record, indent=2) + "\n"
    run = out / RUN_FILE
    if run.exists():
        if json.loads(run.read_text(encoding="utf-8")) != record:
            raise ScreenOptionsError(
                f"{out} was screened with another model, library (or its files have changed) "
                f"or partition size "
                f"(see {run}); screen into a new directory or remove it"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(text, run)


def run_screen(
    plan: ScreenPlan,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Client | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> ScreenResult:
    """Predict the partitions still to do on a cluster, then rank the rows into ``top.csv``.

    ``client`` first, else a ``Client(scheduler)``, else a ``LocalCluster`` of ``workers``
    single-threaded processes (default: up to two). ``on_progress(partitions, rows)`` is
    called as each partition is written (counting those already there).
    """
    _remove_stale_parts(plan.out_dir / PREDICTIONS_DIR)
    todo = plan.todo
    done_parts = len(plan.partitions) - len(todo)
    predicted = 0
    started = time.perf_counter()
    if on_progress is not None:
        on_progress(done_parts, 0)
    if todo:
        with ExitStack() as stack:
            client = client or stack.enter_context(_client(workers, scheduler))
            from distributed import as_completed

            futures = [
                client.submit(
                    _predict_partition,
                    part,
                    key=f"matfuse-screen-{os.path.basename(part.out)}-{part.row_offset}",
                    pure=False,
                    retries=2,
                )
                for part in todo
            ]
            try:
                for future in as_completed(futures):
                    rows = future.result()
                    predicted += rows
                    done_parts += 1
                    if on_progress is not None:
                        on_progress(done_parts, predicted)
            finally:
                for future in futures:
                    future.cancel()
    seconds = time.perf_counter() - started
    rows, invalid = _write_top(plan)
    return ScreenResult(
        rows=rows,
        invalid=invalid,
        partitions=len(plan.partitions),
        resumed=len(plan.partitions) - len(todo),
        rows_predicted=predicted,
        seconds=seconds,
        predictions_dir=plan.out_dir / PREDICTIONS_DIR,
        top_path=plan.out_dir / TOP_FILE,
    )


def _remove_stale_parts(directory: Path) -> None:
    """Temporary files left by a killed run (one screen writes to a directory at a time)."""
    if directory.is_dir():
        for stale in directory.glob(".part-*.part"):
            stale.unlink(missing_ok=True)


class _client:
    """A client to an existing scheduler, or to a local cluster closed with it."""

    def __init__(self, workers: int | None, scheduler: str | None) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self.stack = ExitStack()

    def __enter__(self) -> Client:
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            return self.stack.enter_context(Client(self.scheduler))
        n = self.workers or min(2, os.cpu_count() or 1)
        cluster = self.stack.enter_context(
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        )
        return self.stack.enter_context(Client(cluster))

    def __exit__(self, *exc: object) -> None:
        # a worker busy with a cancelled task is killed at shutdown: expected, not a warning
        nanny = logging.getLogger("distributed.nanny")
        level = nanny.level
        nanny.setLevel(logging.ERROR)
        try:
            self.stack.close()
        finally:
            nanny.setLevel(level)


#: Models loaded in this worker process, by directory: loaded once, not once per partition.
_MODELS: dict[str, PropertyModel] = {}
_MODELS_LOCK = threading.Lock()  # workers of one process (threads) load a model once


def _worker_model(model_dir: str) -> PropertyModel:
    from matfuse.pipeline import PropertyModel

    with _MODELS_LOCK:
        if model_dir not in _MODELS:
            _MODELS[model_dir] = PropertyModel.load(model_dir)
        return _MODELS[model_dir]


def _predict_partition(part: Partition) -> int:
    """On a worker: read, predict and write one partition; its number of rows."""
    model = _worker_model(part.model_dir)
    chunk = read_partition(part.path, part.chunk_index, part.rows)
    frame = predict_chunk(model, chunk, dict(part.columns))
    frame.insert(0, ROW_ID, range(part.row_offset, part.row_offset + len(frame)))
    with append_table(part.out) as append:
        append(frame)
    return len(frame)


def read_partition(path: str | Path, chunk_index: int, rows: int) -> pd.DataFrame:
    """Rows ``[chunk_index * rows, (chunk_index + 1) * rows)`` of a table, as ``iter_table``
    reads them (the same dtypes in every chunk); SDF files are read whole, then sliced."""
    start, stop = chunk_index * rows, (chunk_index + 1) * rows
    seen = 0
    parts: list[pd.DataFrame] = []
    with _table_chunks(path, rows) as chunks:
        for chunk in chunks:
            n = len(chunk)
            if seen + n > start:
                parts.append(chunk.iloc[max(start - seen, 0) : stop - seen])
            seen += n
            if seen >= stop:
                break
    if not parts:
        raise InputTableError(f"{Path(path).name} has no chunk {chunk_index} of {rows} rows")
    frame = parts[0] if len(parts) == 1 else pd.concat(parts)
    return frame.reset_index(drop=True)


@contextmanager
def _table_chunks(path: str | Path, rows: int) -> Iterator[Iterator[pd.DataFrame]]:
    """``iter_table``, closed (its file too) when the block ends, even after an early break."""
    chunks = iter_table(path, chunk_rows=rows)
    try:
        yield chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _write_top(plan: ScreenPlan) -> tuple[int, int]:
    """Stream over the partitions: count rows and errors, keep the best ``top`` rows."""
    best: pd.DataFrame | None = None
    rows = invalid = 0
    order = [plan.by, ROW_ID]
    ascending = [plan.ascending, True]
    for part in plan.partitions:
        frame = pd.read_parquet(part.out)
        rows += len(frame)
        invalid += int(frame["error"].notna().sum()) if "error" in frame else 0
        scores = pd.to_numeric(frame[plan.by], errors="coerce")
        ranked = frame[scores.notna()]
        ranked = ranked.assign(**{plan.by: scores[scores.notna()]})
        ranked = ranked.sort_values(order, ascending=ascending, kind="mergesort").head(plan.top)
        if best is None:
            best = ranked
        else:
            merged = pd.concat([best, ranked], ignore_index=True)
            best = merged.sort_values(order, ascending=ascending, kind="mergesort").head(plan.top)
    top = best if best is not None else pd.DataFrame(columns=[ROW_ID, plan.by])
    write_table(top.reset_index(drop=True), plan.out_dir / TOP_FILE)
    return rows, invalid


def screen(
    model_dir: str | Path,
    library: str | Path,
    out_dir: str | Path,
    top: int = 100,
    workers: int | None = None,
    scheduler: str | None = None,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    client: Client | None = None,
    *,
    by: str | None = None,
    ascending: bool = False,
    input_col: str | Sequence[str] | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> ScreenResult:
    """:func:`plan_screen` then :func:`run_screen`: predict a library, rank its best rows."""
    plan = plan_screen(
        model_dir,
        library,
        out_dir,
        top=top,
        by=by,
        ascending=ascending,
        partition_rows=partition_rows,
        input_col=input_col,
    )
    return run_screen(
        plan, workers=workers, scheduler=scheduler, client=client, on_progress=on_progress
    )
