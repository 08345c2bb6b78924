"""Where benchmark data lives: ``--data`` or ``$MATFUSE_DATA``, else ``../shared/data``.

Benchmarks read public datasets from outside the repository; nothing here is copied into it.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


#: Every shipped encoder that the benchmarks run (fcfp-count adds little over fcfp).
BENCHMARK_ENCODERS = [
    "ecfp",
    "ecfp-count",
    "fcfp",
    "maccs",
    "atompair",
    "torsion",
    "rdkit2d",
    "chemnet",
    "mordred",
]
#: Our own pretrained encoder-decoders (matfuse/weights), benchmarked alone and fused.
LEARNED_ENCODERS = ["smi-ted", "selfies-ted", "smi-ssed", "graph-ged"]


def data_root(explicit: str | None = None) -> Path:
    """The benchmark data directory (the layout of ``shared/data/README.md``)."""
    for candidate in (explicit, os.environ.get("MATFUSE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise SystemExit(
        "benchmark data not found: pass --data DIR or set MATFUSE_DATA to a directory laid out "
        "like shared/data (molecules/moleculenet/<task>/, molecules/moses/)"
    )


def provenance() -> dict[str, Any]:
    """How and where a result was produced, stored beside every number."""
    import numpy
    import rdkit
    import sklearn

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "versions": {
            "rdkit": rdkit.__version__,
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    from matfuse.evaluate import json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False))


@contextmanager
def locked_json(path: Path) -> Iterator[dict[str, Any]]:
    """A results file read and written back under an exclusive lock (``{}`` if absent).

    Several benchmark processes may share one results file (one task or strategy each); each
    merges its rows into what is on disk at write time, so none overwrites another's.
    """
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            payload = json.loads(path.read_text()) if path.exists() else {}
            yield payload
            write_json(path, payload)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
