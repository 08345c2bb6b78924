"""MoleculeNet on the FM4M (SMI-TED) splits: every encoder alone and fused, side by side.

For each task the provided train/valid/test files are used (models fit on train+valid,
scored on test; no model selection uses valid). Each encoder's features are computed once
for all rows and cached under ``benchmarks/.cache``; results are merged into
``benchmarks/results/moleculenet.json`` after every task, so an interrupted run resumes.
A scaffold split of the same molecules is reported too, because the FM4M splits are
random-like (see ``shared/anchors.md``). A markdown table with the published SMI-TED
numbers is written beside the JSON.

    python benchmarks/moleculenet.py [--data DIR] [--tasks esol,bace] [--encoders ...]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from _data import (
    BENCHMARK_ENCODERS,
    LEARNED_ENCODERS,
    RESULTS,
    data_root,
    provenance,
    write_json,
)
from matfuse.foundation.weights import weights_dir
from matfuse.pipeline import DEFAULT_ENCODERS
from matfuse.workflow import compare_representations, encode_all, load_dataset

QM_PROPS = [f"{p}-{m}" for m in ("CC2", "PBE0", "CAM") for p in ("E1", "E2", "f1", "f2")]
TASKS: dict[str, dict[str, Any]] = {
    "esol": {"targets": ["measured log solubility in mols per litre"], "metric": "rmse"},
    "freesolv": {"targets": ["expt"], "metric": "rmse"},
    "bace": {"targets": ["Class"], "metric": "roc_auc"},
    "clintox": {"targets": ["FDA_APPROVED", "CT_TOX"], "metric": "roc_auc"},
    "hiv": {"targets": ["HIV_active"], "metric": "roc_auc"},
    "tox21": {
        "targets": [
            "NR-AR",
            "NR-AR-LBD",
            "NR-AhR",
            "NR-Aromatase",
            "NR-ER",
            "NR-ER-LBD",
            "NR-PPAR-gamma",
            "SR-ARE",
            "SR-ATAD5",
            "SR-HSE",
            "SR-MMP",
            "SR-p53",
        ],
        "metric": "roc_auc",
    },
    "qm8": {"targets": QM_PROPS, "metric": "mae"},
    "qm9": {
        "targets": [
            "alpha",
            "cv",
            "g298",
            "gap",
            "h298",
            "homo",
            "lumo",
            "mu",
            "r2",
            "u0",
            "u298",
            "zpve",
        ],
        "metric": "mae",
    },
}
#: SMI-TED289M published numbers (preprint Tables 3 and 4; shared/anchors.md §1b, §1c).
SMI_TED = {
    "esol": {"frozen": 0.7045, "fine-tuned": 0.6112},
    "freesolv": {"frozen": 1.668, "fine-tuned": 1.2233},
    "bace": {"frozen": 0.8558, "fine-tuned": 0.8824},
    "clintox": {"frozen": 0.9349, "fine-tuned": 0.9427},
    "hiv": {"frozen": 0.8051, "fine-tuned": 0.7685},
    "tox21": {"frozen": 0.8153, "fine-tuned": 0.8185},
    "qm8": {"frozen": 0.0179, "fine-tuned": 0.0095},
    "qm9": {"frozen": 7.4883, "fine-tuned": 1.3246},
}
#: Mordred runs at ~14 molecules/s on one core (benchmarks/results/throughput.json); above
#: this many molecules it is skipped and the JSON says so.
MORDRED_MAX_ROWS = 3000
CACHE = Path(__file__).parent / ".cache"
N_JOBS = 2


def _cache_key(name: str) -> str:
    """Cache file stem of an encoder; learned encoders include a hash of their weights, so
    retrained weights are never scored with stale features."""
    key = name.replace(":", "_")
    if name.split(":")[0] in LEARNED_ENCODERS:
        weights = weights_dir(name.split(":")[0]) / "model.safetensors"
        key += "_" + hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    return key


def cached_blocks(task: str, data, encoders: list[str]) -> dict[str, np.ndarray]:
    """Features per encoder for all rows of a task, cached on disk between runs."""
    CACHE.mkdir(exist_ok=True)
    out = {}
    for name in encoders:
        path = CACHE / f"{task}__{_cache_key(name)}.npy"
        if path.exists():
            out[name] = np.load(path)
        else:
            out[name] = encode_all(data.parsed, [name], progress=False)[name]
            np.save(path, out[name])
    return out


def metric_of(rep: dict[str, Any], metric: str) -> float:
    kind = rep["task_types"][0]
    return float(rep["metrics"]["mean"][kind][metric])


def run_task(task: str, root: Path, encoders: list[str], model: str, scaffold: bool) -> dict:
    spec = TASKS[task]
    folder = root / "molecules" / "moleculenet" / task
    if not (folder / "train.csv").exists():
        return {"skipped": f"no train.csv in {folder} (the FM4M snapshot lacks it)"}
    data = load_dataset(folder, targets=spec["targets"], split="predefined")
    n = len(data.parsed)
    use = [e for e in encoders if not (e == "mordred" and n > MORDRED_MAX_ROWS)]
    skipped = sorted(set(encoders) - set(use))
    t0 = time.perf_counter()
    blocks = cached_blocks(task, data, use)
    encode_s = time.perf_counter() - t0
    fused = {"fused (default)": list(DEFAULT_ENCODERS)}
    learned = [e for e in use if e in LEARNED_ENCODERS]
    if learned:
        # the test of whether pretraining adds value: the core set with and without ours
        fused["fused (default + ours)"] = [*DEFAULT_ENCODERS, *learned]
    if len(use) > len(DEFAULT_ENCODERS) and set(use) != {*DEFAULT_ENCODERS, *learned}:
        fused["fused (all)"] = use
    result = compare_representations(
        data, use, model=model, fused_sets=fused, blocks=blocks, n_jobs=N_JOBS
    ).to_dict()
    result["encode_seconds"] = round(encode_s, 1)
    result["skipped_encoders"] = {e: f"more than {MORDRED_MAX_ROWS} molecules" for e in skipped}
    out = {"metric": spec["metric"], "as_provided": result}
    if scaffold:
        sdata = load_dataset(folder, targets=spec["targets"], split="scaffold")
        members = list(DEFAULT_ENCODERS)
        out["scaffold"] = compare_representations(
            sdata,
            members,
            model=model,
            fused_sets={"fused (default)": members},
            blocks={k: blocks[k] for k in members},
            n_jobs=N_JOBS,
        ).to_dict()
    return out


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# MoleculeNet (FM4M splits): each encoder alone vs fused",
        "",
        "Test-set metric, mean over targets (ROC-AUC ↑ for classification, RMSE ↓ for "
        "esol/freesolv, MAE ↓ for qm8/qm9). Models fit on train+valid. "
        "SMI-TED289M numbers from its preprint (shared/anchors.md).",
        "",
    ]
    for task, res in results.items():
        if "skipped" in res:
            lines += [f"## {task}", "", f"skipped: {res['skipped']}", ""]
            continue
        metric = res["metric"]
        higher = metric == "roc_auc"
        reps = res["as_provided"]["representations"]
        scores = {k: metric_of(v, metric) for k, v in reps.items()}
        singles = {k: v for k, v in scores.items() if not k.startswith("fused")}
        best_single = (max if higher else min)(singles, key=singles.get)
        lines += [
            f"## {task} ({metric})",
            "",
            "| representation | test | scaffold split |",
            "|---|---|---|",
        ]
        sc = res.get("scaffold", {}).get("representations", {})
        for k in sorted(scores, key=scores.get, reverse=higher):
            s = f"{metric_of(sc[k], metric):.4f}" if k in sc else ""
            mark = " (best single)" if k == best_single else ""
            lines.append(f"| {k}{mark} | {scores[k]:.4f} | {s} |")
        ted = SMI_TED.get(task, {})
        lines.append(f"| SMI-TED289M frozen (published) | {ted.get('frozen', '')} | |")
        lines.append(f"| SMI-TED289M fine-tuned (published) | {ted.get('fine-tuned', '')} | |")
        if res["as_provided"].get("skipped_encoders"):
            lines.append("")
            lines.append(f"skipped: {res['as_provided']['skipped_encoders']}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--encoders", default=",".join(BENCHMARK_ENCODERS + LEARNED_ENCODERS))
    parser.add_argument("--model", default="auto")
    parser.add_argument("--no-scaffold", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "moleculenet.json"))
    args = parser.parse_args()
    root = data_root(args.data)
    out = Path(args.out)
    import json

    previous = json.loads(out.read_text()) if out.exists() else {}
    results: dict[str, Any] = previous.get("tasks", {})
    for task in args.tasks.split(","):
        start = time.perf_counter()
        print(f"== {task}", flush=True)
        earlier = results.get(task, {})
        results[task] = run_task(
            task, root, args.encoders.split(","), args.model, scaffold=not args.no_scaffold
        )
        if args.no_scaffold and "scaffold" in earlier:  # keep the earlier run's scaffold split
            results[task]["scaffold"] = earlier["scaffold"]
            results[task]["scaffold_command"] = earlier.get("command", "an earlier run")
        results[task]["seconds"] = round(time.perf_counter() - start, 1)
        results[task]["command"] = provenance()["command"]  # tasks may come from several runs
        payload = {"provenance": provenance(), "tasks": results, "smi_ted_published": SMI_TED}
        write_json(out, payload)
        out.with_suffix(".md").write_text(markdown(results))
        print(f"   done in {results[task]['seconds']} s", flush=True)
    print(markdown(results))


if __name__ == "__main__":
    main()
