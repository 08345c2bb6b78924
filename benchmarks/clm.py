"""The chemical language model (``clm``) on MOSES, and the architecture comparison behind it.

Two parts, each writing ``results/clm_<part>.json`` and ``.md`` with the command that made it::

    # equal-time runs of the two architectures (run dirs of `matfuse clm-train`)
    python benchmarks/clm.py --part compare --runs /tmp/runs/gru,/tmp/runs/transformer
    # the shipped model: the full MOSES metric table, three sampling seeds, mean ± std
    python benchmarks/clm.py --part moses --n-samples 30000 --seeds 0,1,2

Beside ours: MOSES's published baselines (../shared/anchors.md 2a, as in
``benchmarks/generation.py``) and a trivial baseline, molecules drawn at random from MOSES
train (what a perfect memoriser scores: FCD near its floor, novelty 0). ``--ref-size`` scores
against a random subset of each reference set instead of all of it (FCD/SNN/Frag/Scaf then
estimate the full-set values; say so beside any number). Reference FCD statistics are cached in
``benchmarks/.cache/`` (gitignored). Everything runs on one CPU thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import REPO, RESULTS, data_root, provenance, write_json  # noqa: E402
from generation import MOSES_BASELINES, MOSES_COLUMNS, moses_smiles  # noqa: E402
from matfuse.generate.metrics import (  # noqa: E402
    MosesReference,
    fcd_statistics,
    frechet_distance,
    moses_metrics,
)

CACHE = REPO / "benchmarks" / ".cache"


def subset(smiles: list[str], n: int | None, seed: int) -> list[str]:
    if n is None or n >= len(smiles):
        return smiles
    idx = np.random.default_rng(seed).choice(len(smiles), n, replace=False)
    return [smiles[i] for i in sorted(idx)]


def reference(smiles: list[str], tag: str) -> MosesReference:
    """A MOSES reference whose ChemNet statistics are cached on disk (they cost minutes)."""
    ref = MosesReference(smiles, with_fcd=False)
    key = hashlib.sha256("\n".join(ref.smiles).encode()).hexdigest()[:16]
    path = CACHE / f"fcd_{tag}_{key}.npz"
    if path.exists():
        data = np.load(path)
        ref.fcd_stats = (data["mean"], data["cov"])
    else:
        ref.fcd_stats = fcd_statistics(ref.smiles)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, mean=ref.fcd_stats[0], cov=ref.fcd_stats[1])
    return ref


def sample_clm(model: Any, n: int, seed: int, temperature: float = 1.0) -> list[str]:
    generator = torch.Generator().manual_seed(seed)
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, n, 1000):
            smiles, _ = model.sample(
                min(1000, n - start), temperature=temperature, generator=generator
            )
            out += smiles
    return out


def mean_std(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = [k for k in rows[0] if all(isinstance(r.get(k), float | int) for r in rows)]
    return {
        k: {
            "mean": float(np.mean([r[k] for r in rows])),
            "std": float(np.std([r[k] for r in rows])),
        }
        for k in keys
    }


# -- (a) architecture comparison ------------------------------------------------------------
def run_compare(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from matfuse.foundation.tokenizers import canonical_smiles
    from matfuse.pretrain.clm import load_run_model, run_summary

    test: MosesReference | None = None  # built only when a run has enough valid samples
    rows: dict[str, Any] = {}
    for run in args.runs:
        model = load_run_model(run, args.weights)
        t0 = time.perf_counter()
        samples = sample_clm(model, args.n_samples, args.seeds[0])
        sample_s = time.perf_counter() - t0
        valid = [c for c in (canonical_smiles(s) for s in samples) if c]
        row: dict[str, Any] = {
            "arch": model.config.arch,
            "config": model.config.to_dict(),
            "n_parameters": model.n_parameters(),
            **run_summary(run),
            "n_samples": args.n_samples,
            "validity": len(valid) / args.n_samples,
            "uniqueness": len(set(valid)) / max(1, len(valid)),
            "sample_s": round(sample_s, 1),
        }
        if len(valid) >= args.min_valid_fcd:
            if test is None:
                test = reference(subset(moses_smiles(root, "test"), args.ref_size, 0), "test")
            assert test.fcd_stats is not None
            row["FCD/Test"] = frechet_distance(fcd_statistics(valid), test.fcd_stats)
        else:
            row["FCD/Test"] = None
            row["FCD_note"] = f"only {len(valid)} valid samples (< {args.min_valid_fcd})"
        rows[Path(run).name] = row
        print(Path(run).name, json.dumps(row, default=str), flush=True)
    return {"runs": rows, "ref_size": args.ref_size, "weights": args.weights}


def compare_markdown(payload: dict[str, Any]) -> str:
    cols = [
        "arch",
        "n_parameters",
        "steps",
        "tokens_seen",
        "wall_s",
        "cpu_s",
        "validity",
        "uniqueness",
        "FCD/Test",
    ]
    lines = [
        "# clm architecture comparison (equal wall-time runs on the shared 2-core machine)",
        "",
        "Held-out NLL is per token on the first rows of MOSES train (never trained on).",
        "",
        "| run | " + " | ".join(cols) + " | held-out NLL/token |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for name, row in payload["runs"].items():
        nll = (row.get("last_eval") or {}).get("heldout_nll_token")
        lines.append(
            f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in cols) + f" | {_fmt(nll)} |"
        )
    for note in payload.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


# -- (b) MOSES ---------------------------------------------------------------------------
def run_moses(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from matfuse.foundation.clm import clm_meta, load_clm

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    train = moses_smiles(root, "train")
    train_set = set(train)  # MOSES train is RDKit-canonical (checked: see notes)
    refs = {}
    for name, split in (("Test", "test"), ("TestSF", "test_scaffolds")):
        refs[name] = reference(subset(moses_smiles(root, split), args.ref_size, 0), split)
    timings["references_s"] = time.perf_counter() - t0
    model = load_clm(args.model)
    per_seed: list[dict[str, float]] = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        samples = sample_clm(model, args.n_samples, seed, args.temperature)
        sample_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        row = moses_metrics(samples, train_set, refs, snn_sample=args.snn_sample, seed=seed)
        row.update(seed=seed, sample_s=sample_s, metrics_s=time.perf_counter() - t0)
        per_seed.append(row)
        print(f"seed {seed}", json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    # trivial baseline: molecules of the training set itself, drawn at random
    trivial = moses_metrics(
        subset(train, args.n_samples, 1234), train_set, refs, snn_sample=args.snn_sample
    )
    return {
        "model": args.model,
        "model_meta": {k: v for k, v in clm_meta(model).items() if k != "train"},
        "n_samples": args.n_samples,
        "seeds": args.seeds,
        "temperature": args.temperature,
        "ref_size": args.ref_size,
        "snn_sample": args.snn_sample,
        "ours": mean_std(per_seed),
        "per_seed": per_seed,
        "trivial_train_draw": trivial,
        "baselines": MOSES_BASELINES,
        "timings": timings,
    }


def moses_markdown(payload: dict[str, Any]) -> str:
    ref = (
        "full reference sets"
        if payload["ref_size"] is None
        else (f"a random {payload['ref_size']}-molecule subset of each reference set")
    )
    meta = payload.get("model_meta", {})
    lines = [
        f"# MOSES: the `clm` language model ({payload['n_samples']} samples per seed, "
        f"seeds {payload['seeds']}, temperature {payload['temperature']})",
        "",
        f"Model: `{payload['model']}`, {meta.get('steps')} steps, "
        f"{meta.get('molecules_seen')} molecules seen. Scored against {ref}; SNN on "
        f"{payload['snn_sample']} generated molecules. Ours: mean ± std over sampling seeds. "
        "Baselines: MOSES README (../shared/anchors.md 2a). Trivial: MOSES-train molecules "
        "drawn at random.",
        "",
        "| model | " + " | ".join(MOSES_COLUMNS) + " |",
        "|---|" + "---|" * len(MOSES_COLUMNS),
    ]
    ours = payload["ours"]
    cells = [
        f"{ours[c]['mean']:.3f} ± {ours[c]['std']:.3f}" if c in ours else "" for c in MOSES_COLUMNS
    ]
    lines.append("| **clm** (ours) | " + " | ".join(cells) + " |")
    trivial = payload["trivial_train_draw"]
    lines.append(
        "| train draw (trivial) | " + " | ".join(_fmt(trivial.get(c)) for c in MOSES_COLUMNS) + " |"
    )
    for name, row in payload["baselines"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in MOSES_COLUMNS) + " |")
    for note in payload.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["compare", "moses"], required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--model", default="clm", help="moses: shipped name or model directory")
    parser.add_argument("--runs", default="", help="compare: comma-separated run directories")
    parser.add_argument("--weights", default="checkpoint", help="compare: checkpoint|best|model")
    parser.add_argument("--n-samples", type=int, default=30_000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--ref-size", type=int, default=None)
    parser.add_argument("--snn-sample", type=int, default=5_000)
    parser.add_argument("--min-valid-fcd", type=int, default=200)
    parser.add_argument("--note", action="append", default=[], help="a note for the report")
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--suffix", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.runs = [r for r in args.runs.split(",") if r]
    root = data_root(args.data)
    t0 = time.perf_counter()
    if args.part == "compare":
        if not args.runs:
            parser.error("--part compare needs --runs DIR,DIR")
        payload, to_md = run_compare(args, root), compare_markdown
    else:
        payload, to_md = run_moses(args, root), moses_markdown
    payload["wall_s"] = time.perf_counter() - t0
    payload["notes"] = args.note
    payload["runs_provenance"] = [provenance()]
    path = Path(args.out_dir) / f"clm_{args.part}{args.suffix}.json"
    write_json(path, payload)
    path.with_suffix(".md").write_text(to_md(payload))
    print(to_md(payload))


if __name__ == "__main__":
    main()
