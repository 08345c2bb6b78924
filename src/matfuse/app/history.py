"""The runs of one browser session: what was trained on what, how well, and a way back.

FM4M's UI keeps a table of the session's runs; ours did not, so comparing two encoder sets
meant writing numbers down. Each finished training appends a :class:`RunRecord` (data,
encoders, model, split, test metric, time) to the session's :class:`RunHistory`.

A record holds no arrays: the session's memory cap (:mod:`matfuse.app.sessions`) must keep
working however many runs there are. The fitted model of each run is saved to the session's
private directory instead, and *Reload* reads it back from there (the JSON + safetensors
directory :meth:`PropertyModel.save` writes), with the run's small metrics table. Only the
last :data:`MAX_RUNS` runs keep their model directory.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["MAX_RUNS", "RunHistory", "RunRecord"]

#: Runs whose saved model can be reloaded; older ones stay in the table, marked as gone.
MAX_RUNS = 12
HISTORY_COLUMNS = [
    "run",
    "time",
    "data",
    "kind",
    "target",
    "encoders",
    "model",
    "split",
    "rows fit/test",
    "test metric",
    "value",
    "baseline",
    "seconds",
    "reloadable",
]


@dataclass
class RunRecord:
    """One finished training: settings, the headline test metric and where its model is."""

    run: int
    time: str
    data: str
    kind: str
    targets: list[str]
    encoders: list[str]
    model: str
    params: dict[str, Any]
    split: str
    n_fit: int
    n_test: int
    metric: str
    value: float | None
    baseline: float | None
    seconds: float
    summary: str
    #: the per-split metrics table as records (a few rows), shown again on reload
    metrics: list[dict[str, Any]] = field(default_factory=list)
    model_dir: str | None = None

    def row(self) -> dict[str, Any]:
        """The record as one row of the history table."""
        gone = self.model_dir is None or not Path(self.model_dir).exists()
        return {
            "run": self.run,
            "time": self.time,
            "data": self.data,
            "kind": self.kind,
            "target": ", ".join(self.targets),
            "encoders": " + ".join(self.encoders),
            "model": self.model + (f" {self.params}" if self.params else ""),
            "split": self.split,
            "rows fit/test": f"{self.n_fit:,}/{self.n_test:,}",
            "test metric": self.metric,
            "value": None if self.value is None else round(self.value, 4),
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "seconds": round(self.seconds, 1),
            "reloadable": "no (older run)" if gone else "yes",
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunHistory:
    """The session's runs, newest last; model directories under ``root``."""

    records: list[RunRecord] = field(default_factory=list)

    def add(self, record: RunRecord, model_dir: Path, root: Path) -> RunRecord:
        """Keep ``record`` and a copy of its saved model under ``root/run-N``."""
        target = root / f"run-{record.run}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model_dir, target)
        record.model_dir = str(target)
        self.records.append(record)
        for old in self.records[:-MAX_RUNS]:
            if old.model_dir is not None:
                shutil.rmtree(old.model_dir, ignore_errors=True)
                old.model_dir = None
        logger.info("run %d recorded (%s → %s)", record.run, record.encoders, record.model)
        return record

    def next_number(self) -> int:
        return self.records[-1].run + 1 if self.records else 1

    def frame(self) -> pd.DataFrame:
        """The history table, newest run first."""
        rows = [r.row() for r in reversed(self.records)]
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)

    def get(self, number: Any) -> RunRecord:
        """The record of run ``number``; a ``ValueError`` for the user otherwise."""
        try:
            wanted = int(number)
        except (TypeError, ValueError):
            raise ValueError("Give the number of a run from the history table.") from None
        for record in self.records:
            if record.run == wanted:
                return record
        known = ", ".join(str(r.run) for r in self.records) or "none yet"
        raise ValueError(f"There is no run {wanted} in this session (runs: {known}).")


def now_text() -> str:
    """Wall-clock time of a run, as the history table shows it."""
    return time.strftime("%H:%M:%S")


def reload_run(session: Any, number: Any) -> RunRecord:
    """Make run ``number``'s saved model the session's model again (Predict/Generate use it).

    The model is read from the run's directory, not kept in memory, so reloading costs a
    load from disk; a run older than :data:`MAX_RUNS` has no directory any more.
    """
    from matfuse.pipeline import PropertyModel

    history: RunHistory = session.history
    record = history.get(number)
    if record.model_dir is None or not Path(record.model_dir).exists():
        raise ValueError(
            f"Run {record.run}'s model is no longer kept (only the last {MAX_RUNS} runs are); "
            "train it again with the settings shown."
        )
    model = PropertyModel.load(record.model_dir)
    archive = shutil.make_archive(
        str(session.workdir / f"matfuse-model-run-{record.run}"), "zip", root_dir=record.model_dir
    )
    session.model = model
    session.model_dir = Path(record.model_dir)
    session.model_zip = Path(archive)
    session.results = {"metrics": pd.DataFrame(record.metrics), "run": record.run}
    session.fit_in_memory(f"run {record.run}'s model", refuse=False)
    return record
