"""Which encoders should ``--input-type structure`` use by default? Measured on perov_5.

The protocol is the one a new user runs (issue 13, item 8)::

    matfuse train perov_5/val.csv --input-type structure --target heat_ref --out m
    matfuse predict m perov_5/test.csv --out pred.csv

i.e. a seeded random 80/10/10 split of ``val.csv`` whose train+valid rows are fitted
(uncertainty ``auto``, hence split-conformal calibration on 20% of them, exactly as the CLI
does), then MAE on every row of ``test.csv``. Each candidate encoder set runs with model
``auto`` for ``--seeds`` seeds; the trivial baseline (training median) is reported beside
them. Encoder blocks are cached under ``benchmarks/.cache/`` (CHGNet: ~70 structures/s).

    python benchmarks/structure_defaults.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _cache import cached_blocks
from _data import RESULTS, data_root, provenance, write_json

logger = logging.getLogger(__name__)

CANDIDATES: dict[str, list[str]] = {
    "composition,structure-descriptors": ["composition", "structure-descriptors"],
    "composition,structure-descriptors,chgnet": ["composition", "structure-descriptors", "chgnet"],
    "structure-descriptors,chgnet": ["structure-descriptors", "chgnet"],
    "composition,chgnet": ["composition", "chgnet"],
    "chgnet": ["chgnet"],
}
TARGET = "heat_ref"


def load_part(folder: Path, part: str, encoders: list[str]) -> tuple[dict[str, np.ndarray], Any]:
    """Cached blocks of one perov_5 file and its target column."""
    from matfuse.materials.structures import parse_structures

    path = folder / f"{part}.csv"
    frame = pd.read_csv(path)
    blocks = cached_blocks(
        path, encoders, lambda: parse_structures(frame["cif"].tolist()), len(frame)
    )
    return blocks, frame[TARGET].to_numpy(dtype=float)


def cli_fit_rows(n: int, seed: int) -> np.ndarray:
    """Train+valid rows of the CLI's default split (random 80/10/10 with this seed)."""
    from rdkit import Chem

    from matfuse.evaluate.splitters import RandomSplitter

    # the random splitter only asks which rows are valid; every perov_5 cell parses
    proxies = [Chem.MolFromSmiles("C")] * n
    parts = RandomSplitter(valid_size=0.1, test_size=0.1, seed=seed).split(proxies)
    # in the CLI's order (train then valid, each shuffled): row order changes XGBoost's row
    # subsampling and the CV+ folds, which moves the test MAE by about 0.002 eV
    return np.concatenate([parts.train, parts.valid])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from matfuse.evaluate.baseline import baseline_predictions
    from matfuse.evaluate.metrics import regression_metrics
    from matfuse.pipeline import PropertyModel

    folder = data_root(args.data) / "crystals" / "perov_5"
    needed = sorted({e for s in args.sets for e in CANDIDATES[s]})
    train_blocks, y_val = load_part(folder, "val", needed)
    test_blocks, y_test = load_part(folder, "test", needed)
    rows: dict[str, Any] = {}
    for name in args.sets:
        encoders = CANDIDATES[name]
        per_seed = []
        for seed in args.seeds:
            fit = cli_fit_rows(len(y_val), seed)
            start = time.perf_counter()
            pm = PropertyModel(
                encoders=encoders,
                model="auto",
                uncertainty=args.uncertainty,
                model_params=json.loads(args.model_params) if args.model_params else None,
                random_state=seed,
                n_jobs=args.n_jobs,
                input_type="structure",
            )
            pm.fit_blocks({e: train_blocks[e][fit] for e in encoders}, y_val[fit], [TARGET])
            pred = pm.predict_blocks({e: test_blocks[e] for e in encoders})[:, 0]
            m = regression_metrics(y_test, pred)
            per_seed.append(
                {
                    "seed": seed,
                    "n_fit": int(fit.size),
                    "mae": m["mae"],
                    "rmse": m["rmse"],
                    "r2": m["r2"],
                    "seconds": round(time.perf_counter() - start, 1),
                    "target_transform": pm.estimator_.target_transforms_[0]["name"],
                }
            )
            print(f"{name:45s} seed {seed}: MAE {m['mae']:.4f}", flush=True)
        mae = np.array([r["mae"] for r in per_seed])
        rows[name] = {
            "encoders": encoders,
            "mae_mean": float(mae.mean()),
            "mae_std": float(mae.std(ddof=1)) if mae.size > 1 else 0.0,
            "seeds": per_seed,
        }
    base = []
    for seed in args.seeds:
        fit = cli_fit_rows(len(y_val), seed)
        const = baseline_predictions(y_val[fit, None], len(y_test), ["regression"])[:, 0]
        base.append(regression_metrics(y_test, const)["mae"])
    return {
        "provenance": provenance(),
        "protocol": (
            "random 80/10/10 split of perov_5/val.csv (CLI default), fit on train+valid with "
            f"uncertainty={args.uncertainty}, MAE on all of perov_5/test.csv"
        ),
        "model_params": json.loads(args.model_params) if args.model_params else None,
        "n_test": int(len(y_test)),
        "baseline_training_median_mae": float(np.mean(base)),
        "candidates": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Structure default encoders (perov_5, heat_ref)",
        "",
        f"Produced by `{result['provenance']['command']}`.",
        "",
        f"Protocol: {result['protocol']}. Model `auto`, parameters "
        f"{result.get('model_params') or 'default'}.",
        "",
        "| encoders | test MAE (mean ± std over seeds) | seeds |",
        "|---|---|---|",
    ]
    ranked = sorted(result["candidates"].items(), key=lambda kv: kv[1]["mae_mean"])
    for name, row in ranked:
        seeds = len(row["seeds"])
        lines.append(f"| `{name}` | {row['mae_mean']:.4f} ± {row['mae_std']:.4f} | {seeds} |")
    lines.append(
        f"| trivial baseline (training median) | {result['baseline_training_median_mae']:.4f} | |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data root (default $MATFUSE_DATA or ../shared/data)")
    parser.add_argument("--sets", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--uncertainty", default="auto", help="as the CLI: auto")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument(
        "--model-params", help="JSON overrides of the model, e.g. '{\"max_depth\": 5}'"
    )
    parser.add_argument("--out", default=str(RESULTS / "structure_defaults"))
    args = parser.parse_args()
    result = run(args)
    out = Path(args.out)
    write_json(out.with_suffix(".json"), result)
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
