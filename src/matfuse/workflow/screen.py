"""Screen a library of any size through a trained model on a ``dask.distributed`` cluster.

The library (one file, a directory or a glob of CSV/TSV/SMI/SDF/parquet files, gzipped or
not, or a directory of CIF/POSCAR files) is cut into partitions of ``partition_rows``
rows: ``(file, chunk)`` pairs, each with the global row id of its first row. The driver
reads each file once (:func:`~matfuse.workflow.library.scan_file`) to count its rows,
find its input columns and decide one dtype per column; each worker reads its own
partition from the file with those dtypes (no data travels through the scheduler),
predicts it with :func:`~matfuse.workflow.stream.predict_chunk` (the model loaded once
per worker process), scores it with an objective spec if one is given, and writes
``out/predictions/part-<file>-<chunk>.parquet`` atomically: every input row, a ``row_id``
column first, invalid rows with their ``error``.

Bad bytes never stop a run: unreadable rows are flagged in their partition; a file that
cannot be read at all, the rows after the point where a compressed file breaks, and a
partition whose task fails even after Dask's retries (a worker killed mid-task is retried
on another) are listed with their reason in ``out/failed.csv`` and ``run.json``, and
:attr:`ScreenResult.failures` says so (``matfuse screen`` exits 4).

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
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from matfuse.inputs.readers import DEFAULT_PARTITION_ROWS, table_ext
from matfuse.inputs.writers import write_table, write_text
from matfuse.workflow.library import (
    LibraryFile,
    LibraryFileError,
    is_structure_file,
    read_rows,
    scan_file,
)
from matfuse.workflow.stream import (
    InputTableError,
    _message,
    append_table,
    input_columns,
    predict_chunk,
)

if TYPE_CHECKING:
    from distributed import Client

    from matfuse.generate.objectives import Objective
    from matfuse.pipeline import PropertyModel
    from matfuse.workflow.screen_objective import ObjectiveSource

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "FAILED_FILE",
    "ROW_ID",
    "Failure",
    "Partition",
    "ScreenOptionsError",
    "ScreenPlan",
    "ScreenResult",
    "library_files",
    "plan_screen",
    "read_partition",
    "run_screen",
    "screen",
]

logger = logging.getLogger(__name__)

#: The column giving each row's place in the library (files in order, rows in file order).
ROW_ID = "row_id"
RUN_FILE = "run.json"
PREDICTIONS_DIR = "predictions"
TOP_FILE = "top.csv"
#: Rows that are in no partition file, and why (a file unreadable, a task that failed).
FAILED_FILE = "failed.csv"


class ScreenOptionsError(ValueError):
    """The output directory was screened with other options: a user error."""


@dataclass(frozen=True)
class Failure:
    """Rows missing from the predictions: ``rows`` from ``first_row`` (``None``: unknown)."""

    file: str
    first_row: int
    rows: int | None
    stage: str
    reason: str


@dataclass(frozen=True)
class Partition:
    """One worker's task: rows ``[start, stop)`` of one library file.

    ``task`` is ``"predict"`` (``model_dir``; scored by ``objective`` when given) or
    ``"featurize"`` (``encoders``).
    """

    file: LibraryFile
    file_index: int
    chunk_index: int
    start: int
    stop: int
    row_offset: int
    columns: tuple[tuple[str, str], ...]
    out: str
    model_dir: str = ""
    objective: ObjectiveSource | None = None
    task: str = "predict"
    encoders: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.file.path


@dataclass(frozen=True)
class ScreenPlan:
    """What :func:`plan_screen` checked: every partition, and those still to predict."""

    out_dir: Path
    partitions: tuple[Partition, ...]
    by: str
    ascending: bool
    top: int
    rows: int
    failures: tuple[Failure, ...] = ()

    @property
    def todo(self) -> tuple[Partition, ...]:
        return tuple(p for p in self.partitions if not Path(p.out).exists())


@dataclass(frozen=True)
class ScreenResult:
    """What a screen wrote: rows, invalid rows, partitions (and how many were resumed).

    ``failures`` lists rows that are in no partition file (see :data:`FAILED_FILE`).
    """

    rows: int
    invalid: int
    partitions: int
    resumed: int
    rows_predicted: int
    seconds: float
    predictions_dir: Path
    top_path: Path
    failures: tuple[Failure, ...] = ()

    @property
    def rows_per_second(self) -> float:
        return self.rows_predicted / self.seconds if self.seconds > 0 else 0.0


def library_files(library: str | Path) -> list[Path]:
    """The files of a library: one file, every table file in a directory, or a glob's matches.

    Sorted by name, so that row ids are the same on every run. A directory holding CIF or
    POSCAR files is itself one more source (one row per structure file), after its tables.
    """
    path = Path(library)
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file())
    else:
        candidates = sorted(Path(p) for p in glob.glob(str(library)) if Path(p).is_file())
    files = [p for p in candidates if not p.name.startswith(".") and _is_table(p)]
    if path.is_dir() and any(is_structure_file(p) for p in candidates):
        files.append(path)
    if not files:
        raise FileNotFoundError(
            f"no table files (.csv, .tsv, .smi, .sdf, .parquet) or structure files in {library}"
        )
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
    objective: str | Path | Mapping[str, Any] | None = None,
) -> ScreenPlan:
    """Check everything a screen needs before any cluster starts; raise a user error if not.

    Loads the model (and the objective spec), reads each file once to count its rows, find
    its input columns and decide its dtypes (a header-less file is refused), and records
    the options in ``out/run.json`` (a directory screened with other options raises
    :class:`ScreenOptionsError`). A file that cannot be read is listed as a failure; a
    library with no readable file raises :class:`InputTableError`.
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
    source, loaded = _objective(objective)
    ours = _model_columns(model)
    by = by or ("objective" if source is not None else ours[0])
    sources = library_files(library)

    def columns_of(info: LibraryFile) -> dict[str, str]:
        return input_columns(model, info.head, input_col, from_file=info.fmt in ("csv", "tsv"))

    files, failures = _scan_library(sources, columns_of)
    if source is not None:
        from matfuse.workflow.screen_objective import check_objective

        kinds = sorted({k for _, _, cols in files for k in cols.values()})
        assert loaded is not None
        check_objective(loaded, str(model_path.resolve()), kinds)
        ours.append("objective")
    for info, _, _ in files:
        _check_names(info, by, ours)
    partitions, rows = _partitions(
        files,
        out.resolve() / PREDICTIONS_DIR,  # absolute: a remote worker's cwd is not ours
        partition_rows,
        model_dir=str(model_path.resolve()),
        objective=source,
    )
    _record_run(
        out,
        {
            "model": str(model_path.resolve()),
            "objective": None if source is None else _digest(source),
        },
        sources,
        files,
        partition_rows,
    )
    return ScreenPlan(
        out_dir=out,
        partitions=tuple(partitions),
        by=by,
        ascending=ascending,
        top=top,
        rows=rows,
        failures=tuple(failures),
    )


def _objective(
    spec: str | Path | Mapping[str, Any] | None,
) -> tuple[ObjectiveSource | None, Objective | None]:
    """The spec's handle for the workers, and the objective loaded once here (a model term
    loads its model), so that a malformed spec is a SpecError before the library is read."""
    if spec is None:
        return None, None
    from matfuse.workflow.screen_objective import load_source, objective_source

    source = objective_source(spec)
    return source, load_source(source)


def _digest(source: ObjectiveSource) -> str:
    kind, value = source
    text = Path(value).read_text(encoding="utf-8") if kind == "file" else value
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_names(info: LibraryFile, by: str, ours: list[str]) -> None:
    name = Path(info.path).name
    if ROW_ID in info.columns:
        raise ValueError(f"{name} has a column named {ROW_ID!r}, which screen adds")
    if by not in ours and by not in info.columns:
        raise ValueError(
            f"cannot rank by {by!r}: neither a prediction column ({', '.join(ours)}) "
            f"nor a column of {name}"
        )


ScannedFile = tuple[LibraryFile, int, dict[str, str]]  # the file, its index, input columns


def _scan_library(
    sources: list[Path], columns_of: Callable[[LibraryFile], dict[str, str]]
) -> tuple[list[ScannedFile], list[Failure]]:
    """Scan every file; those that cannot be read (or have no input column) are failures.

    A library where no file can be read raises :class:`InputTableError` (a user error).
    """
    files: list[ScannedFile] = []
    failures: list[Failure] = []
    offset = 0
    for index, path in enumerate(sources):
        try:
            info = scan_file(path)
            columns = columns_of(info) if info.rows else {}
        except (LibraryFileError, ValueError, KeyError, OSError) as err:
            reason = _message(err)
            logger.warning("%s cannot be screened: %s", path, reason)
            failures.append(Failure(str(path.resolve()), offset, None, "read", reason))
            continue
        info = info.with_text(list(columns))
        files.append((info, index, columns))
        if info.error is not None:
            logger.warning("%s: %s (after row %d)", path, info.error, info.rows)
            failures.append(
                Failure(str(path.resolve()), offset + info.rows, None, "read", info.error)
            )
        offset += info.rows
    if not files:
        why = "; ".join(f"{Path(f.file).name}: {f.reason}" for f in failures)
        raise InputTableError(why or "the library holds no file")
    return files, failures


def _partitions(
    files: list[ScannedFile],
    parts: Path,
    partition_rows: int,
    **job: Any,
) -> tuple[list[Partition], int]:
    partitions: list[Partition] = []
    offset = 0
    for info, index, columns in files:
        for chunk in range(-(-info.rows // partition_rows)):
            start = chunk * partition_rows
            partitions.append(
                Partition(
                    file=info.for_rows(start),
                    file_index=index,
                    chunk_index=chunk,
                    start=start,
                    stop=min(start + partition_rows, info.rows),
                    row_offset=offset + start,
                    columns=tuple(columns.items()),
                    out=str(parts / f"part-{index:05d}-{chunk:05d}.parquet"),
                    **job,
                )
            )
        offset += info.rows
    return partitions, offset


def _model_columns(model: PropertyModel) -> list[str]:
    """The numeric columns the model adds, ``pred_<first target>`` first."""
    names = list(model.target_names_)
    return [f"{p}_{n}" for p in ("pred", "std", "lower", "upper") for n in names]


def _record_run(
    out: Path,
    options: dict[str, Any],
    sources: list[Path],
    files: list[ScannedFile],
    rows: int,
) -> None:
    """Write ``run.json``, or refuse a directory screened with something else.

    Each file's size and row count are recorded too: a library file changed since the
    first run would otherwise mix old partitions with new ones. The ``failed`` entry (what
    the last run could not do) is not compared: a rerun retries it.
    """
    counts = {Path(info.path).resolve(): info.rows for info, _, _ in files}
    record = {
        **options,
        "library": [
            {"path": str(p.resolve()), "bytes": _size(p), "rows": counts.get(p.resolve())}
            for p in sources
        ],
        "partition_rows": rows,
    }
    run = out / RUN_FILE
    if run.exists():
        before = json.loads(run.read_text(encoding="utf-8"))
        before.pop("failed", None)
        if before != record:
            raise ScreenOptionsError(
                f"{out} was screened with another model, library (or its files have changed), "
                f"objective or partition size "
                f"(see {run}); screen into a new directory or remove it"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(json.dumps(record, indent=2) + "\n", run)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return path.stat().st_size


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
    called as each partition is written (counting those already there). A partition whose
    task still fails after Dask's retries is listed in ``failed.csv``; the others finish.
    """
    todo = plan.todo
    started = time.perf_counter()
    predicted, failed = run_partitions(
        plan, todo, workers=workers, scheduler=scheduler, client=client, on_progress=on_progress
    )
    seconds = time.perf_counter() - started
    failures = (*plan.failures, *failed)
    _record_failures(plan.out_dir, failures)
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
        failures=failures,
    )


def run_partitions(
    plan: ScreenPlan,
    todo: Sequence[Partition],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Client | None = None,
    on_progress: Callable[[int, int], Any] | None = None,
) -> tuple[int, list[Failure]]:
    """Run ``todo`` on the cluster: rows written, and the partitions that failed."""
    _remove_stale_parts(plan.out_dir / PREDICTIONS_DIR)
    done_parts = len(plan.partitions) - len(todo)
    predicted = 0
    failures: list[Failure] = []
    if on_progress is not None:
        on_progress(done_parts, 0)
    if not todo:
        return predicted, failures
    with ExitStack() as stack:
        client = client or stack.enter_context(_client(workers, scheduler))
        from distributed import as_completed

        futures = {
            client.submit(
                _run_partition,
                part,
                key=f"matfuse-screen-{os.path.basename(part.out)}-{part.row_offset}",
                pure=False,
                retries=2,
            ): part
            for part in todo
        }
        try:
            for future in as_completed(futures):
                part = futures[future]
                try:
                    rows = future.result()
                except Exception as err:  # the task's own error, or KilledWorker
                    reason = f"{type(err).__name__}: {_message(err)}"
                    logger.warning("partition %s failed: %s", part.out, reason)
                    n = part.stop - part.start
                    failures.append(Failure(part.path, part.row_offset, n, part.task, reason))
                    continue
                predicted += rows
                done_parts += 1
                if on_progress is not None:
                    on_progress(done_parts, predicted)
        finally:
            for future in futures:
                future.cancel()
    _remove_stale_parts(plan.out_dir / PREDICTIONS_DIR)  # a killed worker's unfinished file
    return predicted, failures


def _record_failures(out: Path, failures: Sequence[Failure]) -> None:
    """``failed.csv`` (header only when nothing failed) and the ``failed`` entry of run.json."""
    rows = [f.__dict__ for f in sorted(failures, key=lambda f: (f.first_row, f.file))]
    columns = ["file", "first_row", "rows", "stage", "reason"]
    frame = pd.DataFrame(rows, columns=columns).astype({"rows": "Int64"})
    write_table(frame, out / FAILED_FILE)
    run = out / RUN_FILE
    record = json.loads(run.read_text(encoding="utf-8"))
    record["failed"] = rows
    write_text(json.dumps(record, indent=2) + "\n", run)


def _remove_stale_parts(directory: Path) -> None:
    """Temporary files left by a killed run (one screen writes to a directory at a time)."""
    if directory.is_dir():
        for stale in directory.glob(".part-*.part"):
            stale.unlink(missing_ok=True)


#: A local cluster has no dashboard to show them: the statistical profiler (a stack sample
#: every 10 ms on each worker) and the GIL monitor cost CPU for nothing, and the system
#: monitors sample less often (an idle local cluster: ~3.5 % of a core -> ~2.8 %).
_QUIET_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


class _client:
    """A client to an existing scheduler, or to a local cluster closed with it."""

    def __init__(self, workers: int | None, scheduler: str | None) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self.stack = ExitStack()

    def __enter__(self) -> Client:
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            return self.stack.enter_context(Client(self.scheduler))
        n = self.workers or min(2, os.cpu_count() or 1)
        with dask.config.set(_QUIET_CLUSTER):  # read as the scheduler and workers start
            cluster = self.stack.enter_context(
                LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                )
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


def _run_partition(part: Partition) -> int:
    """On a worker: read, predict (or featurize) and write one partition; its rows."""
    chunk = read_rows(part.file, part.start, part.stop)
    if part.task == "featurize":
        from matfuse.workflow.distributed_table import featurize_chunk

        frame = featurize_chunk(chunk, dict(part.columns), list(part.encoders))
    else:
        frame = _predict(part, chunk)
    frame.insert(0, ROW_ID, range(part.row_offset, part.row_offset + len(frame)))
    with append_table(part.out) as append:
        append(frame)
    return len(frame)


def _predict(part: Partition, chunk: pd.DataFrame) -> pd.DataFrame:
    model = _worker_model(part.model_dir)
    columns = dict(part.columns)
    frame = predict_chunk(model, chunk, columns)
    if part.objective is None:
        return frame
    from matfuse.workflow.screen_objective import score_frame, worker_objective

    objective = worker_objective(part.objective)
    alpha = float(getattr(model, "alpha", 0.1))
    return score_frame(objective, frame, part.model_dir, next(iter(columns)), alpha)


def read_partition(path: str | Path, chunk_index: int, rows: int) -> pd.DataFrame:
    """Rows ``[chunk_index * rows, (chunk_index + 1) * rows)`` of a library file, as a worker
    reads them (the file scanned first, as the driver does)."""
    info = scan_file(path)
    start = chunk_index * rows
    if start >= info.rows:
        raise InputTableError(f"{Path(path).name} has no chunk {chunk_index} of {rows} rows")
    return read_rows(replace(info, head=None), start, min(start + rows, info.rows))


def _write_top(plan: ScreenPlan) -> tuple[int, int]:
    """Stream over the partitions: count rows and errors, keep the best ``top`` rows."""
    best: pd.DataFrame | None = None
    rows = invalid = 0
    order = [plan.by, ROW_ID]
    ascending = [plan.ascending, True]
    for part in plan.partitions:
        if not Path(part.out).exists():  # a failed partition, listed in failed.csv
            continue
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
    objective: str | Path | Mapping[str, Any] | None = None,
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
        objective=objective,
    )
    return run_screen(
        plan, workers=workers, scheduler=scheduler, client=client, on_progress=on_progress
    )
