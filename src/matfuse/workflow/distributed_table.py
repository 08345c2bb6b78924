"""``matfuse predict`` and ``matfuse featurize`` on Dask workers: the screening engine, one table.

The input is cut into partitions exactly as :mod:`matfuse.workflow.screen` cuts a library;
workers write their partitions to a work directory beside the output
(``.<out name>.parts/``), and the driver then appends them, in row order and without the
``row_id`` column, into the one output table. The work directory is removed once the
output is written; when a partition failed it is kept, and the same command run again
resumes from it (only the missing partitions are computed).

The single-process commands do not come here: without ``--workers``/``--scheduler`` they
are unchanged.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from matfuse.workflow.library import LibraryFile
from matfuse.workflow.screen import (
    PREDICTIONS_DIR,
    ROW_ID,
    Failure,
    ScreenPlan,
    _partitions,
    _record_failures,
    _record_run,
    _scan_library,
    plan_screen,
    run_partitions,
)
from matfuse.workflow.stream import append_table

__all__ = ["TableRun", "featurize_chunk", "featurize_distributed", "predict_distributed"]


@dataclass(frozen=True)
class TableRun:
    """What a distributed predict/featurize wrote: rows, invalid rows, and failures.

    With failures the output is not written and ``work_dir`` is kept for a rerun.
    """

    rows: int
    invalid: int
    failures: tuple[Failure, ...]
    work_dir: Path


def _work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.parts"


def predict_distributed(
    model_dir: str | Path,
    input_path: str | Path,
    out_path: str | Path,
    *,
    rows: int,
    input_col: str | Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> TableRun:
    """Predict ``input_path`` into ``out_path`` on a cluster, ``rows`` rows per partition."""
    out = Path(out_path)
    plan = plan_screen(
        model_dir, input_path, _work_dir(out), partition_rows=rows, input_col=input_col
    )
    return _run(plan, out, workers, scheduler, on_progress)


def featurize_distributed(
    input_path: str | Path,
    out_path: str | Path,
    *,
    encoders: Sequence[str] | None,
    input_type: str | None,
    rows: int,
    input_col: str | Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> TableRun:
    """Encode ``input_path`` into ``out_path`` on a cluster (raw blocks, as ``featurize``)."""
    from matfuse.inputs import check_encoders, default_encoders
    from matfuse.inputs.kinds import detect_columns

    out = Path(out_path)
    cols = [input_col] if isinstance(input_col, str) else list(input_col or [])
    kind = None if input_type in (None, "auto") else input_type

    def columns_of(info: LibraryFile) -> dict[str, str]:
        return detect_columns(info.head, kind, cols or None)

    files, failures = _scan_library([Path(input_path)], columns_of)
    kinds = "+".join(dict.fromkeys(k for _, _, c in files for k in c.values()))
    names = list(encoders or default_encoders(kinds))
    check_encoders(names, kinds)
    work = _work_dir(out)
    partitions, n = _partitions(
        files, work.resolve() / PREDICTIONS_DIR, rows, task="featurize", encoders=tuple(names)
    )
    _record_run(work, {"featurize": names, "input_type": kinds}, [Path(input_path)], files, rows)
    plan = ScreenPlan(work, tuple(partitions), ROW_ID, False, 1, n, tuple(failures))
    return _run(plan, out, workers, scheduler, on_progress)


def _run(
    plan: ScreenPlan,
    out: Path,
    workers: int | None,
    scheduler: str | None,
    on_progress: Callable[[int], Any] | None,
) -> TableRun:
    def progress(partitions: int, rows: int) -> None:
        if on_progress is not None:
            on_progress(rows)

    _, failed = run_partitions(
        plan, plan.todo, workers=workers, scheduler=scheduler, on_progress=progress
    )
    failures = (*plan.failures, *failed)
    if failures:
        _record_failures(plan.out_dir, failures)
        return TableRun(0, 0, failures, plan.out_dir)
    rows = invalid = 0
    with append_table(out) as append:
        for part in plan.partitions:
            frame = pd.read_parquet(part.out).drop(columns=[ROW_ID])
            rows += len(frame)
            invalid += int(frame["error"].notna().sum())
            append(frame)
        if not plan.partitions:
            append(pd.DataFrame(columns=["error"]))
    shutil.rmtree(plan.out_dir, ignore_errors=True)
    return TableRun(rows, invalid, (), plan.out_dir)


def featurize_chunk(
    chunk: pd.DataFrame, columns: dict[str, str], encoders: list[str]
) -> pd.DataFrame:
    """One partition's rows as ``matfuse featurize`` writes them (input, key, error, blocks)."""
    from matfuse.fusion import compute_blocks
    from matfuse.inputs import display_keys, load_input_table

    table = load_input_table(chunk, input_type="+".join(columns.values()), input_col=list(columns))
    blocks = compute_blocks(encoders, table.parsed)
    key_label, keys = display_keys(table.parsed)
    frame = pd.DataFrame({table.input_col: table.inputs, key_label: keys})
    feats = pd.concat(
        [
            pd.DataFrame(b.values, columns=[f"{k}__{i}" for i in range(b.values.shape[1])])
            for k, b in blocks.items()
        ],
        axis=1,
    )
    errors = list(table.errors)
    for b in blocks.values():
        errors = [e or be for e, be in zip(errors, b.errors, strict=True)]
    frame["error"] = errors
    return pd.concat([frame, feats], axis=1)
