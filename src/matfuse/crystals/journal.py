"""The durable record of a crystal search: one JSON line per relaxed candidate.

Why a journal and not a final table: a relaxation costs seconds to minutes, and a search
of hundreds of them is killed (out of time, a laptop lid) more often than it finishes. Each
record is written, flushed and ``fsync``-ed the moment its relaxation ends, so ``kill -9``
loses at most the relaxation in flight. A line cut short by the kill is dropped (and cut
from the file) when the journal is opened again. The run's parameters sit beside it in
``run.json``; a rerun with other parameters into the same directory is refused rather than
mixing two searches in one journal.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monty.json import MontyEncoder

from matfuse.inputs.writers import write_text

logger = logging.getLogger(__name__)

__all__ = ["JOURNAL_NAME", "RUN_NAME", "Journal", "check_run"]

JOURNAL_NAME = "journal.jsonl"
RUN_NAME = "run.json"


class Journal:
    """Append-only JSON-lines file; :meth:`append` returns only once the line is on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records = self._read_and_repair()

    def _read_and_repair(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        records: list[dict[str, Any]] = []
        good = 0  # bytes of complete, parsable lines
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good += len(line)
        if good < len(data):
            logger.warning("dropping a partial last record of %s (interrupted write)", self.path)
            with self.path.open("r+b") as fh:
                fh.truncate(good)
        return records

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every complete record, in the order written."""
        return list(self._records)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self._records if r.get("kind") == kind]

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, cls=MontyEncoder, allow_nan=True) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._records.append(json.loads(line))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self._records)


def check_run(out_dir: str | Path, params: dict[str, Any]) -> None:
    """Record the run's parameters, or refuse when the directory holds a different run."""
    path = Path(out_dir) / RUN_NAME
    wanted = json.loads(json.dumps(params))
    if path.exists():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            found = None
        if found is not None and found != wanted:
            diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise ValueError(
                f"{out_dir} holds a different search (differs in {', '.join(diff)}); "
                "rerun with the same options to resume, or choose another --out"
            )
        if found is not None:
            return
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_text(json.dumps(wanted, indent=2), path)
