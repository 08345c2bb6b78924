"""Transfer learning on small composition targets (issue 19, item 3).

For each target table, a fixed held-out test part is set aside (the set's own ``test.csv``
where it has one, else a fixed 20 % of its rows; at most ``--max-test`` rows), and the
training rows are subsampled to each size in ``--sizes`` with three seeds. Methods:

* ``mean`` — the mean of the training labels (trivial baseline);
* ``scratch`` — the default composition model (``composition`` features, ``auto`` model);
* ``frozen-all`` — every usable source's penultimate layer (``transfer`` encoder) + ``auto``;
* ``frozen-cv`` — the frozen candidate (one source, or all) with the lowest CV MAE;
* ``finetune-cv`` — the fine-tuned source (``transfer-mlp``) with the lowest CV MAE;
* ``shotgun`` — the best of all transfer candidates by CV (frozen or fine-tuned);
* ``shotgun+scratch`` — the same pick with ``scratch`` among the candidates.

Sources are the shipped library (``transfer-compositions``, one per shared set); the
target's own source is excluded automatically by the leakage check (recorded per run).
Every run is appended to ``<out>.jsonl`` (resumable: finished runs are skipped), and the
tables are written to ``<out>.json`` / ``<out>.md``.

    nice -n 10 python benchmarks/multimodal_transfer.py --sizes 100 --max-minutes 60
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

logger = logging.getLogger("multimodal_transfer")

TARGETS = (
    "expt_gap",
    "steels_yield",
    "jdft2d",
    "phonons",
    "dielectric",
    "aflow__agl_thermal_conductivity_300K",
    "aflow__ael_debye_temperature",
    "aflow__ael_shear_modulus_vrh",
)
METHODS = (
    "mean",
    "scratch",
    "frozen-all",
    "frozen-cv",
    "finetune-cv",
    "shotgun",
    "shotgun+scratch",
)
#: Matbench v0.1 leaderboard, full data (5-fold nested CV), from ../shared/anchors.md §3.
PUBLISHED = {
    "expt_gap": {"MODNet v0.1.12": 0.3327, "RF-SCM/Magpie": 0.4461, "Dummy": 1.1435},
    "steels_yield": {"MODNet v0.1.12": 87.7627, "RF-SCM/Magpie": 103.5125, "Dummy": 229.7445},
}
TEST_SEED = 1234


def load_target(data: Path, name: str, max_test: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, test) of one target: its own test split or a fixed 20 %, capped at max_test."""
    comp = data / "compositions"
    bench = comp / "benchmark" / name
    rng = np.random.default_rng(TEST_SEED)
    if bench.is_dir():
        parts = [pd.read_csv(bench / f) for f in ("train.csv", "val.csv") if (bench / f).exists()]
        pool, test = pd.concat(parts, ignore_index=True), pd.read_csv(bench / "test.csv")
    else:
        frame = pd.read_csv(comp / "matbench" / f"{name}.csv")
        order = rng.permutation(len(frame))
        n_test = int(round(0.2 * len(frame)))
        test, pool = frame.iloc[order[:n_test]], frame.iloc[order[n_test:]]
    if len(test) > max_test:
        test = test.iloc[rng.permutation(len(test))[:max_test]]
    return pool.reset_index(drop=True), test.reset_index(drop=True)


def _mae(pred: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(pred)
    return float(np.mean(np.abs(pred[ok] - y[ok])))


def run_one(
    name: str,
    pool: Any,
    test: Any,
    n: int,
    seed: int,
    lib: Any,
    cv: int,
    screen: dict[str, Any] | None = None,
    finetune_top: int | None = None,
) -> dict[str, Any]:
    """Every method on one (target, size, seed): test MAE, CV picks, exclusions, CPU s."""
    from matfuse.pipeline import PropertyModel
    from matfuse.transfer.features import CompositionRow
    from matfuse.transfer.shotgun import shotgun

    cpu0 = time.process_time()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(pool["y"]), size=min(n, len(pool["y"])), replace=False)
    X, y = pool["X"][idx], pool["y"][idx]
    formulas = [pool["formulas"][i] for i in idx]
    out: dict[str, Any] = {
        "target": name,
        "size": n,
        "n": int(len(idx)),
        "seed": seed,
        "mae": {},
    }
    out["mae"]["mean"] = _mae(np.full(len(test["y"]), y.mean()), test["y"])
    scratch = PropertyModel(
        encoders=["composition"],
        model="auto",
        input_type="composition",
        uncertainty="none",
        random_state=seed,
    ).fit_blocks({"composition": X}, y)
    out["mae"]["scratch"] = _mae(
        scratch.predict_blocks({"composition": test["X"]})[:, 0], test["y"]
    )
    res = shotgun(
        (formulas, y),
        lib,
        cv=cv,
        include_scratch=True,
        uncertainty="none",
        screen_params=screen,
        finetune_top=finetune_top,
        random_state=seed,
        refit=False,
    )
    test_rows = np.empty(len(test["y"]), dtype=object)
    test_rows[:] = [CompositionRow(k, test["X"][i]) for i, k in enumerate(test["keys"])]

    def test_mae(cand_name: str) -> float:
        model = res.refit(cand_name, uncertainty="none")
        if model.model == "transfer-mlp":
            pred = model.predict_blocks({"transfer-mlp": test_rows})[:, 0]
        else:
            spec = model.encoders[0]
            pred = model.predict_blocks({spec: _frozen_block(lib, res.sources, spec, test["X"])})
            pred = pred[:, 0]
        return _mae(pred, test["y"])

    transfer = [c for c in res.candidates if c.mode != "scratch"]
    picks = {
        "frozen-all": "frozen:all",
        "frozen-cv": min((c for c in transfer if c.mode == "frozen"), key=lambda c: c.cv_mae).name,
        "finetune-cv": min(
            (c for c in transfer if c.mode == "finetune"), key=lambda c: c.cv_mae
        ).name,
        "shotgun": min(transfer, key=lambda c: c.cv_mae).name,
        "shotgun+scratch": res.best,
    }
    cache: dict[str, float] = {"scratch": out["mae"]["scratch"]}
    for method, cand in picks.items():
        if cand not in cache:
            cache[cand] = test_mae(cand)
        out["mae"][method] = cache[cand]
    out["picks"] = picks
    out["excluded"] = sorted(res.excluded)
    out["own_source_excluded"] = name in res.excluded
    out["cv"] = {c.name: round(c.cv_mae, 6) for c in res.candidates}
    out["cpu_s"] = round(time.process_time() - cpu0, 1)
    return out


def _frozen_block(lib: Any, usable: list[str], spec: str, X: np.ndarray) -> np.ndarray:
    from matfuse.encoders.registry import parse_encoder_spec

    _, params = parse_encoder_spec(spec)
    names = usable if params.get("sources") == "all" else [str(params["sources"])]
    return np.hstack([lib.sources[n].model.embed(X) for n in names])


def featurize(frame: pd.DataFrame) -> dict[str, Any]:
    from matfuse.transfer.features import composition_features

    keys, X, _ = composition_features(list(frame["formula"]))
    y = pd.to_numeric(frame["target"], errors="coerce").to_numpy(float)
    ok = np.array([k is not None for k in keys]) & np.isfinite(y)
    return {
        "keys": [k for k, good in zip(keys, ok, strict=True) if good],
        "X": X[ok],
        "y": y[ok],
        "formulas": [str(f) for f, good in zip(frame["formula"], ok, strict=True) if good],
    }


def summarise(runs: list[dict[str, Any]], command: str, sizes: list[int]) -> dict[str, Any]:
    """mean ± std over seeds per target, size and method; the acceptance fraction at 100."""
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for r in runs:
        cell = table.setdefault(r["target"], {}).setdefault(str(r["size"]), {})
        for m, v in r["mae"].items():
            cell.setdefault(m, {"values": []})["values"].append(v)  # type: ignore[arg-type]
    for per_n in table.values():
        for cell in per_n.values():
            for stats in cell.values():
                vals = np.asarray(stats["values"], dtype=float)
                stats["mean"], stats["std"], stats["n_seeds"] = (
                    float(vals.mean()),
                    float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    int(len(vals)),
                )
    wins: dict[str, dict[str, Any]] = {}
    for size in sizes:
        for method in ("frozen-all", "frozen-cv", "finetune-cv", "shotgun", "shotgun+scratch"):
            beat, beat_1sd, total = [], [], 0
            for target, per_n in table.items():
                cell = per_n.get(str(size))
                if not cell or method not in cell:
                    continue
                total += 1
                diff = cell["scratch"]["mean"] - cell[method]["mean"]
                if diff > 0:
                    beat.append(target)
                if diff > max(cell["scratch"]["std"], cell[method]["std"]):
                    beat_1sd.append(target)
            if total:
                wins[f"{method}@{size}"] = {
                    "beats_scratch": len(beat) / total,
                    "beats_scratch_by_1sd": len(beat_1sd) / total,
                    "targets": beat,
                    "n_targets": total,
                }
    return {
        "command": command,
        "table": table,
        "wins": wins,
        "published_full_data": PUBLISHED,
        "cpu_s_total": round(sum(r["cpu_s"] for r in runs), 1),
        "runs": runs,
    }


def test_overlap(data: Path, targets: list[str], lib: Any, max_test: int) -> dict[str, Any]:
    """Share of each target's test formulas that are rows of each source's table.

    Not label leakage (another property of the same materials), but a frozen source can
    carry what it learnt about a test material itself; the table says how often that is.
    """
    from matfuse.transfer.features import composition_features
    from matfuse.transfer.library import formula_hashes

    out: dict[str, Any] = {}
    for name in targets:
        _, test = load_target(data, name, max_test)
        keys = [k for k in composition_features(list(test["formula"]))[0] if k is not None]
        hashes = formula_hashes(keys)
        out[name] = {
            n: round(float(s.labels_of(hashes)[0].mean()), 3) for n, s in lib.sources.items()
        }
    return out


def write_markdown(summary: dict[str, Any], path: Path, sizes: list[int]) -> None:
    lines = [
        "# Transfer learning on small composition targets (issue 19, item 3)",
        "",
        f"Command: `{summary['command']}`",
        "",
        "Test MAE, mean ± std over seeds (n = training rows). Sources: the shipped",
        "`transfer-compositions` library; the target's own source is excluded automatically.",
        f"Total CPU: {summary['cpu_s_total']} s (1 thread).",
        "",
    ]
    for size in sizes:
        lines += [
            f"## n = {size}",
            "",
            "| target | " + " | ".join(METHODS) + " |",
            "|---|" + "---|" * len(METHODS),
        ]
        for target, per_n in summary["table"].items():
            cell = per_n.get(str(size))
            if not cell:
                continue
            best = min(
                (cell[m]["mean"] for m in METHODS if m in cell and m != "mean"), default=None
            )
            row = []
            for m in METHODS:
                if m not in cell:
                    row.append("—")
                    continue
                text = f"{cell[m]['mean']:.4g} ± {cell[m]['std']:.2g}"
                row.append(f"**{text}**" if cell[m]["mean"] == best else text)
            seeds = cell["scratch"]["n_seeds"]
            lines.append(f"| {target} ({seeds} seeds) | " + " | ".join(row) + " |")
        lines.append("")
        picks: dict[str, list[str]] = {}
        for r in summary["runs"]:
            if r["size"] == size:
                picks.setdefault(r["target"], []).append(r["picks"]["shotgun"])
        lines.append(
            "Shotgun picks (one per seed): "
            + "; ".join(f"{t}: {', '.join(p)}" for t, p in picks.items())
        )
        lines.append("")
        for key, w in summary["wins"].items():
            if key.endswith(f"@{size}"):
                lines.append(
                    f"- {key.split('@')[0]} beats scratch on {w['beats_scratch']:.0%} of "
                    f"{w['n_targets']} targets ({w['beats_scratch_by_1sd']:.0%} by more than "
                    "one std)"
                )
        lines.append("")
    lines += [
        "Published (full data, Matbench v0.1 leaderboard, 5-fold CV MAE; not comparable to",
        "these small-n figures, shown for scale):",
        "",
    ]
    for target, pubs in summary["published_full_data"].items():
        lines.append(f"- {target}: " + ", ".join(f"{k} {v}" for k, v in pubs.items()))
    lines.append("")
    overlap = summary.get("test_overlap")
    if overlap:
        lines += [
            "Share of each target's test formulas found in a source's table (the target's",
            "own source is excluded; the others stay, see the caveat in the model card):",
            "",
            "| target | own | largest other sources |",
            "|---|---|---|",
        ]
        for target, shares in overlap.items():
            others = sorted(
                ((v, k) for k, v in shares.items() if k != target and v >= 0.05), reverse=True
            )
            shown = ", ".join(f"{k} {v:.0%}" for v, k in others[:4]) or "none above 5 %"
            lines.append(f"| {target} | {shares.get(target, 0):.0%} | {shown} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MATFUSE_DATA", "/work/shared/data"))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 100, 200, 500])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--max-test", type=int, default=1000)
    parser.add_argument("--library", default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument(
        "--summarise-only",
        action="store_true",
        help="Rewrite the .json/.md from the .jsonl runs (adds the test-overlap table).",
    )
    parser.add_argument(
        "--finetune-top",
        type=int,
        default=None,
        help="Fine-tune only the sources whose frozen candidates scored best (default: all).",
    )
    parser.add_argument(
        "--screen-trees",
        type=int,
        default=None,
        help="Trees of the forest/booster in the shotgun's CV fits of frozen candidates "
        "(a cheaper screen; winners are refitted with the default model).",
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "multimodal_transfer")
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("matfuse").setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(1)
    from matfuse.transfer.library import load_library

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".jsonl")
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    finished = {(r["target"], r["size"], r["seed"]) for r in done}
    lib = load_library(args.library)
    screen = (
        None
        if args.screen_trees is None
        else {m: {"n_estimators": args.screen_trees} for m in ("rf", "xgboost")}
    )
    deadline = None if args.max_minutes is None else time.monotonic() + 60 * args.max_minutes
    stopped = False
    if args.summarise_only:
        previous = out.with_suffix(".json")
        if previous.exists():
            command = json.loads(previous.read_text())["command"] + "; then " + command
        args.sizes = sorted({r["size"] for r in done})
        args.targets = []
    # sizes outermost: the acceptance size (first given) completes for every target first
    for size in args.sizes:
        for name in args.targets:
            pool_frame, test_frame = load_target(Path(args.data), name, args.max_test)
            pool, test = None, None
            for seed in args.seeds:
                if (name, size, seed) in finished:
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    stopped = True
                    break
                if pool is None:
                    pool, test = featurize(pool_frame), featurize(test_frame)
                result = run_one(
                    name, pool, test, size, seed, lib, args.cv, screen, args.finetune_top
                )
                done.append(result)
                with log.open("a") as handle:
                    handle.write(json.dumps(result) + "\n")
                logger.info(
                    "%s n=%d seed=%d: %s (%.0f CPU s)",
                    name,
                    size,
                    seed,
                    {k: round(v, 4) for k, v in result["mae"].items()},
                    result["cpu_s"],
                )
    sizes_done = sorted({r["size"] for r in done} & set(args.sizes)) or args.sizes
    summary = summarise(done, command, sizes_done)
    summary["complete"] = not stopped
    targets_done = sorted({r["target"] for r in done}, key=lambda t: [*TARGETS, t].index(t))
    summary["test_overlap"] = test_overlap(Path(args.data), targets_done, lib, args.max_test)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    write_markdown(summary, out.with_suffix(".md"), sizes_done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
