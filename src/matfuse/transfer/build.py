"""Building a source library from property tables (what ``matfuse transfer-build`` runs).

Each table (one file, or one directory of ``train/val/test`` splits) becomes one source. A
random 10 % of its rows is held out to report an honest test metric beside the mean
predictor; the shipped net is the one trained on the other 90 % (no refit: it would double
the cost and the held-out figure would then describe a different net). Large tables are
subsampled to ``max_rows`` training rows to bound the cost, which is recorded per source.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matfuse.rows import first_line
from matfuse.transfer.features import composition_features
from matfuse.transfer.library import Source, SourceLibrary, _safe_name, formula_hashes
from matfuse.transfer.network import SourceMLP

logger = logging.getLogger(__name__)

__all__ = ["PropertyTable", "build_library", "find_tables", "library_card", "read_table"]

SPLIT_FILES = ("train.csv", "val.csv", "test.csv")


@dataclass
class PropertyTable:
    """A named table of formulas and one property, with the files it came from."""

    name: str
    formulas: list[str]
    y: np.ndarray
    files: list[str]

    def fingerprint(self) -> list[str]:
        import hashlib

        return [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in self.files]


def read_table(
    files: Sequence[str | Path],
    name: str,
    formula_col: str | None = None,
    target_col: str | None = None,
) -> PropertyTable:
    """Read and concatenate ``files``; columns default to ``formula`` and ``target``
    (or, in a two-column table, the first and the second)."""
    frames = []
    for f in files:
        try:
            frames.append(pd.read_csv(f))
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise ValueError(f"{f}: not a readable CSV table ({first_line(err)})") from None
    frame = pd.concat(frames, ignore_index=True)
    fcol = formula_col or ("formula" if "formula" in frame else frame.columns[0])
    tcol = target_col or ("target" if "target" in frame else None)
    if tcol is None:
        if frame.shape[1] != 2:
            raise ValueError(f"{files[0]}: say which column is the target (columns {list(frame)})")
        tcol = frame.columns[1]
    for col in (fcol, tcol):
        if col not in frame:
            raise ValueError(f"{files[0]} has no column {col!r} (columns {list(frame)})")
    y = pd.to_numeric(frame[tcol], errors="coerce").to_numpy(dtype=float)
    return PropertyTable(
        _safe_name(name), [str(v) for v in frame[fcol]], y, [str(f) for f in files]
    )


def find_tables(paths: Sequence[str | Path]) -> list[tuple[str, list[Path]]]:
    """(source name, files) for each table under ``paths``.

    A ``.csv`` file is a table named by its stem; a directory holding ``train.csv`` (and
    maybe ``val.csv``/``test.csv``) is one table named by the directory; any other directory
    is searched one level down for both.
    """
    found: list[tuple[str, list[Path]]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append((path.stem, [path]))
        elif path.is_dir() and (path / "train.csv").exists():
            found.append((path.name, [path / f for f in SPLIT_FILES if (path / f).exists()]))
        elif path.is_dir():
            children = sorted(path.iterdir())
            if not children:
                raise FileNotFoundError(f"{path} holds no tables")
            found.extend(find_tables([c for c in children if c.is_dir() or c.suffix == ".csv"]))
        else:
            raise FileNotFoundError(f"{path} does not exist")
    names = [n for n, _ in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two tables would be named {', '.join(dupes)}; rename one file")
    return found


def _cpu_seconds() -> float:
    return time.process_time()


def build_library(
    tables: Sequence[PropertyTable],
    *,
    encoder: str = "composition",
    max_rows: int = 8000,
    test_fraction: float = 0.1,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    command: str | None = None,
    on_source: Callable[[str, dict[str, Any]], None] | None = None,
) -> SourceLibrary:
    """Train one :class:`SourceMLP` per table and return the library (not yet saved).

    ``max_minutes`` is shared by all sources: each gets the time left divided by the sources
    left (the best epoch so far is kept when its share runs out).
    """
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    started = time.monotonic()
    sources: dict[str, Source] = {}
    for i, table in enumerate(tables):
        cpu0, wall0 = _cpu_seconds(), time.monotonic()
        keys, X, errors = composition_features(table.formulas, encoder)
        ok = np.array([k is not None for k in keys]) & np.isfinite(table.y)
        skipped = int(len(keys) - ok.sum())
        rng = np.random.default_rng(seed)
        rows = rng.permutation(np.flatnonzero(ok))
        n_test = max(1, int(round(test_fraction * len(rows))))
        test, train = rows[:n_test], rows[n_test:]
        if len(train) > max_rows:
            train = train[:max_rows]
        share = None
        if max_minutes is not None:
            left = max_minutes - (time.monotonic() - started) / 60.0
            share = max(0.05, left / (len(tables) - i))
        model = SourceMLP(**{"random_state": seed, "max_minutes": share, **(params or {})})
        model.fit(X[train], table.y[train])
        pred = model.predict(X[test])
        y_test = table.y[test]
        mae = float(np.mean(np.abs(pred - y_test)))
        baseline = float(np.mean(np.abs(np.mean(table.y[train]) - y_test)))
        ss_res = float(np.sum((pred - y_test) ** 2))
        ss_tot = float(np.sum((y_test - y_test.mean()) ** 2))
        valid_keys = [k for k, good in zip(keys, ok, strict=True) if good]
        frame = pd.DataFrame({"h": formula_hashes(valid_keys), "y": table.y[ok]})
        grouped = frame.groupby("h", sort=True)["y"].mean()
        info = {
            "data": table.files,
            "sha256": table.fingerprint(),
            "n_rows": len(keys),
            "n_skipped": skipped,
            "n_train": int(len(train)),
            "n_test": int(len(test)),
            "test_mae": mae,
            "test_r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "baseline_mae": baseline,
            "cpu_s": round(_cpu_seconds() - cpu0, 2),
            "wall_s": round(time.monotonic() - wall0, 2),
            "best_epoch": int(model.best_epoch_),
            "command": command,
        }
        sources[table.name] = Source(
            table.name,
            model,
            info,
            grouped.index.to_numpy(dtype=np.int64),
            grouped.to_numpy(dtype=np.float64),
        )
        logger.info(
            "source %s: %d train rows, test MAE %.4g (mean predictor %.4g), %.1f CPU s",
            table.name,
            len(train),
            mae,
            baseline,
            info["cpu_s"],
        )
        if on_source is not None:
            on_source(table.name, info)
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "seed": seed,
        "max_rows": max_rows,
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    return SourceLibrary(sources, encoder, None, meta)


def library_card(library: SourceLibrary, title: str = "Transfer source library") -> str:
    """A markdown model card: one row per source with its data, rows, metric and cost."""
    params = next(iter(library.sources.values())).model.get_params() if library.sources else {}
    lines = [
        f"# {title}",
        "",
        "Source models for transfer learning of property models (XenonPy.MDL style, Yamada et",
        "al. 2019): one MLP per property table on the "
        f"`{library.encoder}` features; its last hidden layer is the `transfer` encoder, and",
        "`transfer-mlp` fine-tunes it on a small target (see `matfuse.transfer`).",
        "",
        f"- built: {library.meta.get('created')}, seed {library.meta.get('seed')}, "
        f"at most {library.meta.get('max_rows')} training rows per source",
        f"- command: `{library.meta.get('command')}`",
        f"- network: hidden {list(params.get('hidden', ()))}, SiLU, dropout "
        f"{params.get('dropout')}, AdamW lr {params.get('lr')}, early stopping (patience "
        f"{params.get('patience')}) on 10 % of the training rows; the target is standardised "
        "(signed log first where its labels are heavy-tailed)",
        "- test: a random 10 % of each table, never trained on; `baseline` is the mean predictor",
        "",
        "| source | data | rows | train | test MAE | baseline MAE | test R² | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total, nan = 0.0, float("nan")
    for name, s in library.sources.items():
        info = s.info
        data = ", ".join(_short(f) for f in info.get("data", []))
        total += float(info.get("cpu_s", 0.0))
        lines.append(
            f"| {name} | {data} | {info.get('n_rows')} | {info.get('n_train')} | "
            f"{info.get('test_mae', nan):.4g} | {info.get('baseline_mae', nan):.4g} | "
            f"{info.get('test_r2', nan):.3f} | {info.get('cpu_s')} |"
        )
    lines += [
        "",
        f"Total CPU time (featurising and training, 1 thread): {total:.0f} s.",
        "",
        "Leakage: each source stores hashes of its table's reduced formulas and their mean",
        "label; `matfuse.transfer.check_leakage` excludes a source from a target whose formulas",
        "are mostly in it with the same label ranking (shotgun transfer does this by itself).",
        "Sources built from different properties of the same materials (the AFLOW sets) are",
        "kept: they share compositions with each other's targets, so frozen features can carry",
        "a correlated property of a test material that the source saw in training.",
        "",
    ]
    return "\n".join(lines)


def _short(path: str) -> str:
    parts = Path(path).parts
    return "/".join(parts[-3:]) if len(parts) > 3 else path
