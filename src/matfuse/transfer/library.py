"""A library of source models: one :class:`SourceMLP` per property table, saved as a directory.

Layout (every file checked against ``manifest.json`` before it is read, as for models)::

    library.json          format, the encoder the nets read, and per source: its data files
                          and their sha256, rows, training parameters and state, the held-out
                          metric, CPU seconds and the command that built it
    <source>.safetensors  the net's weights and input statistics, plus ``row_keys`` (hashes
                          of the source table's reduced formulas) and ``row_labels`` (their
                          mean label), which let a target be recognised as the source's data
    MODEL_CARD.md         the human-readable summary (written by the build)

Why the row fingerprints: a source trained on the target's own table makes transfer look
excellent and is worthless (the classic leakage of transfer-learning benchmarks). A source is
recognised as "the same data" when most of the target's formulas are in it *and* its labels
rank the same way as the target's (Kendall tau, so a log or unit change does not hide it); a
source that shares materials but measures another property (AFLOW bulk vs shear modulus) is
not excluded by that rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from matfuse.models.manifest import MANIFEST_NAME, atomic_directory, verify_manifest

if TYPE_CHECKING:  # torch loads with the nets, not when encoders are listed
    from matfuse.transfer.network import SourceMLP

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LIBRARY",
    "LIBRARY_KIND",
    "LeakCheck",
    "Source",
    "SourceLibrary",
    "check_leakage",
    "formula_hashes",
    "load_library",
    "resolve_library_path",
    "select_sources",
    "source_widths",
    "split_names",
]

ArrayLikeFloat = Sequence[float] | NDArray[np.float64]
LIBRARY_KIND = "matfuse.transfer.SourceLibrary"
LIBRARY_CONFIG = "library.json"
FORMAT_VERSION = 1
#: The library that ships with matfuse (``matfuse/weights/transfer-compositions``).
DEFAULT_LIBRARY = "transfer-compositions"
#: Leakage rule: share of the target's rows found in the source, and label rank agreement
#: (Kendall's tau-b on the shared rows). The target's own data in any unit or monotone
#: transform gives tau = 1 (less only where duplicate formulas were averaged); a related
#: property of the same materials does not: AFLOW shear vs bulk modulus on 50 shared
#: formulas has tau 0.51-0.80 over 20 draws, while Spearman's rho reaches 0.94-0.97 and
#: passed the earlier 0.95 rule on small folds.
LEAK_MIN_OVERLAP = 0.5
LEAK_MIN_RANK_CORR = 0.9


def formula_hashes(keys: Sequence[str | None]) -> NDArray[np.int64]:
    """Stable 64-bit hashes of row keys (reduced formulas); ``None`` hashes to 0."""
    out = np.zeros(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        if key is not None:
            digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
            out[i] = int.from_bytes(digest, "little", signed=True)
    return out


@dataclass
class Source:
    """One source model with its provenance (``info``) and its table's row fingerprints."""

    name: str
    model: SourceMLP
    info: dict[str, Any]
    row_keys: NDArray[np.int64] = field(repr=False)
    row_labels: NDArray[np.float64] = field(repr=False)

    @property
    def embedding_dim(self) -> int:
        return self.model.embedding_dim

    def labels_of(self, hashes: NDArray[np.int64]) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """Which hashes are rows of this source, and the source's label there (NaN if not)."""
        pos = np.searchsorted(self.row_keys, hashes)
        pos = np.clip(pos, 0, max(len(self.row_keys) - 1, 0))
        found = (len(self.row_keys) > 0) & (self.row_keys[pos] == hashes)
        labels = np.where(found, self.row_labels[pos] if len(self.row_keys) else np.nan, np.nan)
        return found, labels


@dataclass
class SourceLibrary:
    """Source models by name, the encoder spec they read, and where they were loaded from."""

    sources: dict[str, Source]
    encoder: str = "composition"
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    def select(self, names: str | Sequence[str] = "all", exclude: Sequence[str] = ()) -> list[str]:
        """Source names from ``"all"``, a ``+``- or comma-separated string or a list, minus
        ``exclude`` (same forms). ``+`` is what fits in an encoder spec on a command line."""
        return select_sources(self.names, names, exclude)

    def save(self, directory: str | Path, card: str | None = None) -> Path:
        """Write the library (atomic, with a manifest); ``card`` becomes ``MODEL_CARD.md``."""
        from safetensors.numpy import save_file

        entries = []
        with atomic_directory(directory, LIBRARY_KIND, owns=lambda name: True) as tmp:
            for name, source in self.sources.items():
                state, arrays = source.model.state()
                arrays["row_keys"] = np.ascontiguousarray(source.row_keys, dtype=np.int64)
                arrays["row_labels"] = np.ascontiguousarray(source.row_labels, dtype=np.float32)
                save_file(arrays, str(tmp / f"{name}.safetensors"))
                entries.append(
                    {
                        "name": name,
                        "params": _jsonable(source.model.get_params()),
                        "state": state,
                        **source.info,
                    }
                )
            config = {
                "format": LIBRARY_KIND,
                "format_version": FORMAT_VERSION,
                "encoder": self.encoder,
                **self.meta,
                "sources": entries,
            }
            (tmp / LIBRARY_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
            if card is not None:
                (tmp / "MODEL_CARD.md").write_text(card)
        return Path(directory)


def select_sources(
    available: Sequence[str], names: str | Sequence[str] = "all", exclude: Sequence[str] = ()
) -> list[str]:
    """:meth:`SourceLibrary.select` over a list of source names."""
    wanted = list(available) if names in ("", "all") else split_names(names)
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise ValueError(
            f"unknown transfer source(s) {', '.join(unknown)}; choose from {', '.join(available)}"
        )
    dropped = set(split_names(exclude))
    chosen = [n for n in wanted if n not in dropped]
    if not chosen:
        raise ValueError("no transfer source left after exclusions")
    return chosen


def source_widths(library: str | Path | None = None) -> dict[str, int]:
    """Each source's embedding width, in library order, from ``library.json`` alone: listing
    the encoder (``matfuse encoders``, the UI) must not load the nets, or torch."""
    path = resolve_library_path(library).absolute()
    config = verify_manifest(path, LIBRARY_KIND).read_json(LIBRARY_CONFIG)
    widths = {}
    for entry in config["sources"]:
        hidden = tuple(entry["params"].get("hidden", ()))
        if not hidden:
            raise ValueError(f"{path}: source {entry['name']!r} has no hidden layer")
        widths[_safe_name(str(entry["name"]))] = int(hidden[-1])
    return widths


def split_names(names: str | Sequence[str]) -> list[str]:
    """``"a+b"``, ``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (empty parts dropped)."""
    if isinstance(names, str):
        return [n.strip() for n in re.split(r"[+,]", names) if n.strip()]
    return [str(n) for n in names]


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _safe_name(name: str) -> str:
    if not name or Path(name).name != name or name.startswith(".") or "," in name or ":" in name:
        raise ValueError(f"bad source name {name!r}: use letters, digits, '_', '-', '.'")
    return name


def resolve_library_path(library: str | Path | None) -> Path:
    """``None`` or a shipped name -> its directory under ``matfuse/weights``; else the path."""
    from matfuse.foundation.weights import weights_dir

    if library is None or str(library) == DEFAULT_LIBRARY:
        return weights_dir(DEFAULT_LIBRARY)
    path = Path(library)
    if not path.exists() and weights_dir(str(library)).exists():
        return weights_dir(str(library))
    return path


def load_library(library: str | Path | None = None) -> SourceLibrary:
    """Load a source library (the shipped one by default), verifying its manifest first.

    Loaded libraries are cached per directory and manifest content, so encoders and models
    that name the same library share one copy.
    """
    path = resolve_library_path(library).absolute()
    if not (path / MANIFEST_NAME).exists() and not (path / LIBRARY_CONFIG).exists():
        raise FileNotFoundError(f"{path} is not a transfer source library (no {LIBRARY_CONFIG})")
    stamp = (path / MANIFEST_NAME).read_bytes() if (path / MANIFEST_NAME).exists() else b""
    return _load_cached(str(path), hashlib.sha256(stamp).hexdigest())


@lru_cache(maxsize=8)
def _load_cached(path_text: str, stamp: str) -> SourceLibrary:
    from safetensors.numpy import load

    path = Path(path_text)
    manifest = verify_manifest(path, LIBRARY_KIND)
    config = manifest.read_json(LIBRARY_CONFIG)
    if not isinstance(config, dict) or config.get("format") != LIBRARY_KIND:
        raise ValueError(f"{path / LIBRARY_CONFIG} is not a {LIBRARY_KIND}")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported transfer library version {config.get('format_version')!r}")
    sources: dict[str, Source] = {}
    for entry in config["sources"]:
        name = _safe_name(str(entry["name"]))
        arrays = load(manifest.read_bytes(f"{name}.safetensors"))
        params = dict(entry["params"])
        params["hidden"] = tuple(params.get("hidden", ()))
        from matfuse.transfer.network import SourceMLP

        model = SourceMLP(**params).load_state(entry["state"], arrays)
        info = {k: v for k, v in entry.items() if k not in ("name", "params", "state")}
        sources[name] = Source(
            name,
            model,
            info,
            np.asarray(arrays["row_keys"], dtype=np.int64),
            np.asarray(arrays["row_labels"], dtype=np.float64),
        )
    meta = {
        k: v
        for k, v in config.items()
        if k not in ("format", "format_version", "encoder", "sources")
    }
    logger.debug("loaded transfer library %s (%d sources)", path, len(sources))
    return SourceLibrary(sources, str(config.get("encoder", "composition")), path, meta)


@dataclass(frozen=True)
class LeakCheck:
    """Why a source is (not) the target's own data: overlap share and label rank agreement
    (Kendall's tau-b)."""

    source: str
    overlap: float
    rank_corr: float | None
    leaked: bool

    @property
    def reason(self) -> str:
        corr = "n/a" if self.rank_corr is None else f"{self.rank_corr:.3f}"
        return (
            f"source {self.source!r} was built from the target's data "
            f"({self.overlap:.0%} of target formulas in it, label Kendall tau {corr})"
        )


def check_leakage(
    library: SourceLibrary,
    keys: Sequence[str | None],
    y: ArrayLikeFloat | None = None,
    *,
    min_overlap: float = LEAK_MIN_OVERLAP,
    min_rank_corr: float = LEAK_MIN_RANK_CORR,
) -> list[LeakCheck]:
    """For every source: is it built from the target rows ``keys`` (with labels ``y``)?

    A source is leaked when at least ``min_overlap`` of the target's keyed rows are rows of
    the source and, on those shared rows, the source's labels and ``y`` have a
    rank agreement (Kendall's tau-b) of at least ``min_rank_corr``. Without ``y`` the
    overlap alone decides.

    Kendall rather than Spearman: both are 1 for the target's own labels in any monotone
    transform, but Kendall counts discordant pairs directly, so a correlated *different*
    property of the same materials stays well below the threshold where Spearman's rho,
    which squares rank gaps, can come within a few hundredths of 1 on a small subset.
    """
    from scipy.stats import kendalltau

    hashes = formula_hashes(keys)
    keyed = np.array([k is not None for k in keys], dtype=bool)
    y_arr = None if y is None else np.asarray(y, dtype=np.float64).reshape(-1)
    if y_arr is not None:
        keyed &= np.isfinite(y_arr)
    checks = []
    for name, source in library.sources.items():
        if not keyed.any():
            checks.append(LeakCheck(name, 0.0, None, False))
            continue
        found, labels = source.labels_of(hashes[keyed])
        overlap = float(found.mean())
        corr: float | None = None
        leaked = overlap >= min_overlap
        if leaked and y_arr is not None:
            a, b = y_arr[keyed][found], labels[found]
            if len(a) >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
                corr = float(kendalltau(a, b).statistic)
                leaked = bool(np.isfinite(corr) and corr >= min_rank_corr)
            else:  # too few or constant rows to compare: shared formulas decide
                corr = None
        checks.append(LeakCheck(name, overlap, corr, leaked))
    for check in checks:
        if check.leaked:
            logger.debug("leaked: %s", check.reason)
    return checks
