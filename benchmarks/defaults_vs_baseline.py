"""Does the default model beat the trivial baseline on every shared materials set?

Issue 13, item 8: a default that a constant outperforms is worse than no default. For every
shared composition set and for perov_5 this script fits what a user gets without options
(the default encoders of the input kind, model ``auto``, uncertainty ``auto``, target
transform ``auto``) and the trivial baseline of :mod:`matfuse.evaluate.baseline` (training
median), and scores both with the same metric code on the same test rows.

Splits:

* ``compositions/benchmark/<set>/``: fit on train+val, test on test (what ``matfuse train
  <dir>`` does with a directory of provided splits);
* ``compositions/matbench/<set>.csv`` (no split shipped): ``--folds``-fold shuffled CV
  (default 5, seed ``--seed``), MAE averaged over folds;
* ``crystals/perov_5``: the CLI protocol of the acceptance test: a random 80/10/10 split of
  ``val.csv`` whose train+valid rows are fitted, MAE on every row of ``test.csv``.

Encoder blocks are cached in ``benchmarks/.cache/`` (CHGNet runs only for perov_5, once).
Writes ``results/defaults_vs_baseline.json`` and ``.md``.

    python benchmarks/defaults_vs_baseline.py                       # every set
    python benchmarks/defaults_vs_baseline.py --sets jdft2d mp_e_hull
    python benchmarks/defaults_vs_baseline.py --structure-encoders composition,chgnet
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

PEROV = "perov_5"
TARGET_COLUMN = {"composition": "target", "structure": "heat_ref"}
INPUT_COLUMN = {"composition": "formula", "structure": "cif"}


def find_sets(root: Path) -> dict[str, dict[str, Any]]:
    """Every shared composition set and perov_5, with its files and protocol."""
    sets: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "compositions" / "matbench").glob("*.csv")):
        sets[path.stem] = {"kind": "composition", "files": {"all": path}, "protocol": "cv"}
    for folder in sorted((root / "compositions" / "benchmark").iterdir()):
        files = {p: folder / f"{p}.csv" for p in ("train", "val", "test")}
        if all(f.exists() for f in files.values()):
            sets[folder.name] = {"kind": "composition", "files": files, "protocol": "provided"}
    perov = root / "crystals" / PEROV
    if (perov / "val.csv").exists() and (perov / "test.csv").exists():
        sets[PEROV] = {
            "kind": "structure",
            "files": {"val": perov / "val.csv", "test": perov / "test.csv"},
            "protocol": "cli",
        }
    return sets


def _parser(kind: str):
    if kind == "composition":
        from matfuse.materials.compositions import parse_compositions

        return parse_compositions
    from matfuse.materials.structures import parse_structures

    return parse_structures


def load_file(path: Path, kind: str, encoders: list[str]) -> tuple[dict[str, np.ndarray], Any]:
    """Cached encoder blocks and target column of one CSV."""
    frame = pd.read_csv(path)
    parse = _parser(kind)
    values = frame[INPUT_COLUMN[kind]].tolist()
    blocks = cached_blocks(path, encoders, lambda: parse(values), len(frame))
    return blocks, frame[TARGET_COLUMN[kind]].to_numpy(dtype=float)


def fit_and_score(
    blocks_fit: dict[str, np.ndarray],
    y_fit: np.ndarray,
    blocks_test: dict[str, np.ndarray],
    y_test: np.ndarray,
    encoders: list[str],
    kind: str,
    seed: int,
    n_jobs: int,
    target_transform: str = "auto",
    model_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Default model vs trivial baseline on one split, scored by the report's code."""
    from matfuse.evaluate.baseline import compare_to_baseline, evaluate_baseline
    from matfuse.evaluate.metrics import evaluate_targets
    from matfuse.pipeline import PropertyModel

    start = time.perf_counter()
    # the default run leaves target_transform at "auto"; "none" measures what "auto" changed
    pm = PropertyModel(
        encoders=encoders,
        model="auto",
        model_params=model_params,
        random_state=seed,
        n_jobs=n_jobs,
        input_type=kind,
        target_transform=target_transform,
    )
    pm.fit_blocks(blocks_fit, y_fit, ["y"])
    pred = pm.predict_blocks(blocks_test)
    Y_test = y_test[:, None].copy()
    Y_test[~np.isfinite(pred)] = np.nan  # score model and baseline on the same rows
    tasks = list(pm.task_types_)
    model = evaluate_targets(Y_test, pred, tasks, ["y"])
    baseline = evaluate_baseline(y_fit[:, None], Y_test, tasks, ["y"])
    cmp = compare_to_baseline(model, baseline)["y"]
    transform = pm.estimator_.target_transforms_[0]
    return {
        "n_train": int(np.isfinite(y_fit).sum()),
        "n_test": int(model["targets"]["y"]["n"]),
        "model_mae": model["targets"]["y"]["mae"],
        "baseline_mae": baseline["metrics"]["targets"]["y"]["mae"],
        "model_rmse": model["targets"]["y"]["rmse"],
        "baseline_rmse_mean": baseline["training_mean"]["targets"]["y"]["rmse"],
        "ratio": cmp["ratio"],
        "beats_baseline": cmp["beats_baseline"],
        "model": pm.estimator_.models_[0],
        "uncertainty": pm.estimator_.uncertainty_[0],
        "target_transform": transform["name"],
        "tail_weight": transform["tail_weight"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def run_set(name: str, spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from matfuse.inputs import default_encoders

    kind = spec["kind"]
    params = None
    if kind == "structure" and args.structure_encoders:
        encoders = args.structure_encoders.split(",")
    else:
        encoders = list(default_encoders(kind))
    if kind == "structure" and args.structure_model_params:
        params = json.loads(args.structure_model_params)
    files = spec["files"]
    if spec["protocol"] == "provided":
        parts = {p: load_file(f, kind, encoders) for p, f in files.items()}
        fit_blocks = {e: np.vstack([parts["train"][0][e], parts["val"][0][e]]) for e in encoders}
        y_fit = np.concatenate([parts["train"][1], parts["val"][1]])
        row = fit_and_score(
            fit_blocks,
            y_fit,
            *parts["test"],
            encoders,
            kind,
            args.seed,
            args.n_jobs,
            args.target_transform,
            params,
        )
        folds = [row]
    elif spec["protocol"] == "cli":
        from structure_defaults import cli_fit_rows

        val_blocks, y_val = load_file(files["val"], kind, encoders)
        test_blocks, y_test = load_file(files["test"], kind, encoders)
        fit = cli_fit_rows(len(y_val), args.seed)
        folds = [
            fit_and_score(
                {e: val_blocks[e][fit] for e in encoders},
                y_val[fit],
                test_blocks,
                y_test,
                encoders,
                kind,
                args.seed,
                args.n_jobs,
                args.target_transform,
                params,
            )
        ]
    else:
        from sklearn.model_selection import KFold

        blocks, y = load_file(files["all"], kind, encoders)
        folds = []
        for train, test in KFold(args.folds, shuffle=True, random_state=args.seed).split(y):
            folds.append(
                fit_and_score(
                    {e: blocks[e][train] for e in encoders},
                    y[train],
                    {e: blocks[e][test] for e in encoders},
                    y[test],
                    encoders,
                    kind,
                    args.seed,
                    args.n_jobs,
                    args.target_transform,
                    params,
                )
            )
    model_mae = float(np.mean([f["model_mae"] for f in folds]))
    baseline_mae = float(np.mean([f["baseline_mae"] for f in folds]))
    transforms = sorted({f["target_transform"] for f in folds})
    return {
        "kind": kind,
        "encoders": encoders,
        "model_params": params,
        "protocol": spec["protocol"] if spec["protocol"] != "cv" else f"{args.folds}-fold CV",
        "n_train": int(np.mean([f["n_train"] for f in folds])),
        "n_test": int(np.sum([f["n_test"] for f in folds])),
        "model_mae": model_mae,
        "baseline_mae": baseline_mae,
        "ratio": model_mae / baseline_mae,
        "beats_baseline": all(bool(f["beats_baseline"]) for f in folds),
        "target_transform": "/".join(transforms),
        "model": "/".join(sorted({f["model"] for f in folds})),
        "uncertainty": "/".join(sorted({f["uncertainty"] for f in folds})),
        "folds": folds,
    }


def _params_note(row: dict[str, Any]) -> str:
    params = row.get("model_params")
    return f" (`{json.dumps(params)}`)" if params else ""


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Default model vs trivial baseline",
        "",
        f"Produced by `{result['provenance']['command']}` ({result['provenance']['date']}).",
        "",
        "Default model = default encoders of the input kind, model and uncertainty `auto`, "
        f"target transform `{result.get('target_transform', 'auto')}`; baseline = training "
        "median (the MAE-optimal constant). MAE on the "
        "test rows; matbench sets: mean over folds (n_test is their total). `beats` is "
        "per fold (all folds). Each row's own command is in the JSON (a `--sets` rerun "
        "replaces only its rows).",
        "",
        "| set | encoders | protocol | n_train | n_test | model | transform | model MAE | "
        "baseline MAE | ratio | beats |",
        "|---|---|---|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for name, r in result["sets"].items():
        lines.append(
            f"| {name} | {'+'.join(r['encoders'])}{_params_note(r)} | {r['protocol']} | "
            f"{r['n_train']} | "
            f"{r['n_test']} | {r['model']} | {r['target_transform']} | {r['model_mae']:.4g} | "
            f"{r['baseline_mae']:.4g} | {r['ratio']:.3f} | "
            f"{'yes' if r['beats_baseline'] else 'NO'} |"
        )
    n_beat = sum(r["beats_baseline"] for r in result["sets"].values())
    lines += ["", f"The default beats the baseline on {n_beat} of {len(result['sets'])} sets."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data root (default $MATFUSE_DATA or ../shared/data)")
    parser.add_argument("--sets", nargs="+", help="only these sets (names as in the table)")
    parser.add_argument("--folds", type=int, default=5, help="CV folds for matbench sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=1, help="threads per model fit")
    parser.add_argument(
        "--structure-encoders",
        help="comma-separated encoders for perov_5 (default: the library's structure default)",
    )
    parser.add_argument(
        "--target-transform",
        default="auto",
        choices=["auto", "none"],
        help="'none' measures the default without the heavy-tail rule (write it elsewhere)",
    )
    parser.add_argument(
        "--structure-model-params",
        help='JSON model_params for perov_5, e.g. \'{"xgboost": {"max_depth": 5}}\'',
    )
    parser.add_argument("--out", default=str(RESULTS / "defaults_vs_baseline"))
    args = parser.parse_args()
    available = find_sets(data_root(args.data))
    unknown = sorted(set(args.sets or []) - set(available))
    if unknown:
        raise SystemExit(f"unknown sets {unknown}; choose from {sorted(available)}")
    chosen = {k: v for k, v in available.items() if not args.sets or k in args.sets}
    out = Path(args.out)
    previous: dict[str, Any] = {}
    if args.sets and out.with_suffix(".json").exists():
        # a filtered rerun updates its rows and keeps the others (each row keeps its command)
        previous = json.loads(out.with_suffix(".json").read_text()).get("sets", {})
    sets: dict[str, Any] = dict(previous)
    for name, spec in chosen.items():
        print(f"{name} ...", flush=True)
        sets[name] = run_set(name, spec, args) | {"command": provenance()["command"]}
        r = sets[name]
        print(
            f"  {name}: model {r['model_mae']:.4g} vs baseline {r['baseline_mae']:.4g} "
            f"(ratio {r['ratio']:.3f}, transform {r['target_transform']})",
            flush=True,
        )
    ordered = {k: sets[k] for k in available if k in sets}
    result = {
        "provenance": provenance(),
        "seed": args.seed,
        "target_transform": args.target_transform,
        "sets": ordered,
    }
    write_json(out.with_suffix(".json"), result)
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
