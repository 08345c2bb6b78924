"""Encoder blocks cached on disk under ``benchmarks/.cache/`` (gitignored).

CHGNet embeds about 70 structures/s on one core, so the 7,572 perov_5 cells cost two minutes
every time a benchmark is rerun; the tree models that consume the features take seconds.
Blocks are keyed by the sha256 of the data file and the encoder spec, so a changed file or a
different encoder never reuses a stale block.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _data import REPO

logger = logging.getLogger(__name__)

CACHE = REPO / "benchmarks" / ".cache"


def file_digest(path: Path) -> str:
    """Short content hash of a data file (the cache key's first half)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def cached_blocks(
    source: Path,
    encoders: Sequence[str],
    parse: Callable[[], Any],
    n_rows: int,
    cache: Path = CACHE,
) -> dict[str, np.ndarray]:
    """Each encoder's block for the ``n_rows`` rows of ``source``, in file order.

    ``parse`` returns the parsed inputs and is only called when some block is missing (parsing
    7,572 CIFs alone takes 15 s). Blocks are stored as ``<file digest>__<encoder>.npy``; the
    row count is checked on load so a block written for a different parse is never used.
    """
    from matfuse.encoders import get_encoder

    cache.mkdir(parents=True, exist_ok=True)
    key = file_digest(source)
    parsed: Any = None
    out: dict[str, np.ndarray] = {}
    for name in encoders:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        path = cache / f"{key}__{stem}.npy"
        if path.exists():
            block = np.load(path)
            if block.shape[0] == n_rows:
                out[name] = block
                continue
            logger.warning(
                "cache %s has %d rows, expected %d: recomputing", path, block.shape[0], n_rows
            )
        if parsed is None:
            parsed = parse()
        start = time.perf_counter()
        block = np.asarray(get_encoder(name).encode_block(parsed).values, dtype=np.float64)
        seconds = time.perf_counter() - start
        print(
            f"  encoded {name} for {source.name}: {block.shape} in {seconds:.1f}s "
            f"({len(parsed) / max(seconds, 1e-9):.1f}/s)",
            flush=True,
        )
        np.save(path, block)
        out[name] = block
    return out
