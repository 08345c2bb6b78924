"""The PMO benchmark (Gao et al. 2022): 20 oracle-free tasks, 10,000 oracle calls, AUC top-10.

Each (task, strategy, seed) run is one row of ``results/pmo.json``; rows are merged into the
file under a lock, so several processes (e.g. one per strategy) can run at once and a killed
run loses only the row it was on. ``--max-minutes`` stops starting new runs after that long.
``screening`` is the trivial baseline: random MOSES-train molecules scored in order (PMO's
"screening" scores random ZINC molecules the same way)::

    python benchmarks/pmo.py --strategies graph-ga,screening --seeds 0 --max-minutes 90
    python benchmarks/pmo.py --strategies reinvent --prior clm --seeds 0,1,2
    python benchmarks/pmo.py --report        # rewrite pmo.md from pmo.json; runs nothing

Published per-task AUC top-10 (REINVENT, Graph GA, screening) are PMO's leaderboard pages
(``pmo-benchmark/pmo-benchmark.github.io`` commit 4627367, ``<task>/index.md``; the mean of
5 seeds); Genetic GFN's are the 7 tasks in ../shared/anchors.md section 8 (f-RAG Table 1,
from the Genetic GFN paper); sums are recomputed over the tasks both sides have.
"""

from __future__ import annotations

import argparse
import fcntl
import inspect
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import RESULTS, data_root, provenance, write_json  # noqa: E402
from matfuse.generate.api import STRATEGIES, make_strategy  # noqa: E402
from matfuse.generate.metrics import top_k_mean  # noqa: E402
from matfuse.generate.pmo import PMO_BUDGET, PMO_ISOMER_TASKS, PMO_TASKS, pmo_auc  # noqa: E402
from matfuse.generate.strategies import BudgetedOracle  # noqa: E402

#: PMO leaderboard AUC top-10 per task (pmo-benchmark.github.io @4627367, <task>/index.md)
PUBLISHED: dict[str, dict[str, float | None]] = {
    "REINVENT": {
        "albuterol_similarity": 0.882,
        "amlodipine_mpo": 0.635,
        "celecoxib_rediscovery": 0.713,
        "deco_hop": 0.666,
        "fexofenadine_mpo": 0.784,
        "isomers_c7h8n2o2": 0.852,
        "isomers_c9h10n2o2pf2cl": 0.642,
        "median1": 0.356,
        "median2": 0.276,
        "mestranol_similarity": 0.618,
        "osimertinib_mpo": 0.837,
        "perindopril_mpo": 0.537,
        "qed": 0.941,
        "ranolazine_mpo": 0.760,
        "scaffold_hop": 0.560,
        "sitagliptin_mpo": 0.021,
        "thiothixene_rediscovery": 0.534,
        "troglitazone_rediscovery": 0.441,
        "valsartan_smarts": 0.178,
        "zaleplon_mpo": 0.358,
    },
    "Graph GA": {
        "albuterol_similarity": 0.838,
        "amlodipine_mpo": 0.661,
        "celecoxib_rediscovery": 0.630,
        "deco_hop": 0.619,
        "fexofenadine_mpo": 0.760,
        "isomers_c7h8n2o2": 0.862,
        "isomers_c9h10n2o2pf2cl": 0.719,
        "median1": 0.294,
        "median2": 0.273,
        "mestranol_similarity": 0.579,
        "osimertinib_mpo": 0.831,
        "perindopril_mpo": 0.538,
        "qed": 0.940,
        "ranolazine_mpo": 0.728,
        "scaffold_hop": 0.517,
        "sitagliptin_mpo": 0.433,
        "thiothixene_rediscovery": 0.479,
        "troglitazone_rediscovery": 0.390,
        "valsartan_smarts": 0.000,
        "zaleplon_mpo": 0.346,
    },
    # anchors.md section 8 (f-RAG NeurIPS 2024 Table 1, from Kim et al. 2024); other tasks
    # were not available offline
    "Genetic GFN": {
        "celecoxib_rediscovery": 0.802,
        "troglitazone_rediscovery": 0.511,
        "thiothixene_rediscovery": 0.583,
        "median1": 0.379,
        "osimertinib_mpo": 0.860,
        "fexofenadine_mpo": 0.856,
        "isomers_c9h10n2o2pf2cl": 0.897,
    },
    # PMO's random-ZINC screening baseline; its valsartan entry on the site is corrupt (9.277)
    "PMO screening": {
        "albuterol_similarity": 0.483,
        "amlodipine_mpo": 0.535,
        "celecoxib_rediscovery": 0.351,
        "deco_hop": 0.590,
        "fexofenadine_mpo": 0.666,
        "isomers_c7h8n2o2": 0.168,
        "isomers_c9h10n2o2pf2cl": 0.106,
        "median1": 0.205,
        "median2": 0.200,
        "mestranol_similarity": 0.409,
        "osimertinib_mpo": 0.764,
        "perindopril_mpo": 0.445,
        "qed": 0.938,
        "ranolazine_mpo": 0.411,
        "scaffold_hop": 0.471,
        "sitagliptin_mpo": 0.022,
        "thiothixene_rediscovery": 0.317,
        "troglitazone_rediscovery": 0.249,
        "valsartan_smarts": None,
        "zaleplon_mpo": 0.072,
    },
}
#: the papers' 23-task sums (anchors.md 2c and 8), for reference only (we run 20 tasks)
PUBLISHED_23_TASK_SUMS = {"REINVENT": 14.196, "Graph GA": 13.751, "Genetic GFN": 16.213}

OUT = RESULTS / "pmo.json"
LOCK = Path(os.environ.get("TMPDIR", "/tmp")) / "matfuse-pmo-results.lock"


# -- running -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _moses_train(root: Path) -> tuple[str, ...]:
    return tuple(pd.read_csv(root / "molecules" / "moses" / "train.csv.gz")["SMILES"])


def moses_corpus(root: Path, n: int, seed: int) -> list[str]:
    """``n`` random MOSES-train molecules (RDKit-canonical already), in a seeded random order."""
    train = _moses_train(root)
    idx = np.random.default_rng(seed).permutation(len(train))[:n]
    return [train[i] for i in idx]


def screening(oracle: BudgetedOracle, corpus: list[str], batch: int = 500) -> None:
    """The trivial baseline: score corpus molecules in the given (random) order."""
    for start in range(0, len(corpus), batch):
        if oracle.exhausted:
            return
        oracle(corpus[start : start + batch])


def run_one(
    task_name: str, strategy: str, seed: int, args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    corpus = moses_corpus(root, args.corpus_size, seed)
    oracle = BudgetedOracle(PMO_TASKS[task_name], args.budget)
    t0, c0 = time.perf_counter(), time.process_time()
    options: dict[str, Any] = {}
    search: Any = None
    if strategy == "screening":
        screening(oracle, corpus)
    else:
        if "prior" in inspect.signature(STRATEGIES.get(strategy)).parameters:
            options["prior"] = args.prior
        search = make_strategy(strategy, seed=seed, corpus=corpus, **options)
        search.run(oracle)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    history = oracle.history
    best = int(np.argmax(history)) if history else 0
    return {
        "task": task_name,
        "strategy": strategy,
        "seed": seed,
        "auc_top10": pmo_auc(history, args.budget, k=10),
        "auc_top1": pmo_auc(history, args.budget, k=1),
        "top10": top_k_mean(history, 10),
        "best": max(history) if history else 0.0,
        "best_smiles": oracle.records[best]["smiles"] if history else None,
        "n_calls": oracle.n_calls,
        "n_proposed": oracle.n_proposed,
        "n_invalid": oracle.n_invalid,
        "n_multi_fragment": oracle.n_multi_fragment,
        # PMO's convergence stop (None: the run spent its whole budget whatever happened)
        "patience": getattr(search, "patience", None),
        # PMO_TASKS score isomer terms as TDC does (see matfuse.generate.pmo); rows without
        # this field were scored with GuacaMol's definition and are rerun
        "isomer_scoring": "tdc" if task_name in PMO_ISOMER_TASKS else None,
        "wall_s": wall,
        "cpu_s": cpu,
        "prior": options.get("prior"),
        "prior_training": _prior_record(options.get("prior")),
        "command": provenance()["command"],
    }


def _prior_record(prior: str | None) -> dict[str, Any] | None:
    """Steps and held-out figures of the prior a run used (priors get retrained)."""
    if prior is None:
        return None
    from matfuse.foundation.clm import clm_meta
    from matfuse.generate.strategies.reinvent import load_prior

    meta = clm_meta(load_prior(prior))
    keep = ("corpus", "steps", "molecules_seen", "wall_time_s", "best_heldout_nll_mol")
    return {k: meta[k] for k in keep if k in meta} or meta


@contextmanager
def locked_results(path: Path) -> Iterator[dict[str, Any]]:
    """The results file, read and written back under an exclusive lock."""
    LOCK.touch(exist_ok=True)
    with LOCK.open("r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            payload = json.loads(path.read_text()) if path.exists() else {}
            payload.setdefault("budget", PMO_BUDGET)
            payload.setdefault("runs", {})
            yield payload
            write_json(path, payload)
            path.with_suffix(".md").write_text(markdown(payload))
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _key(task: str, strategy: str, seed: int) -> str:
    return f"{task}|{strategy}|{seed}"


def _current(row: dict[str, Any] | None) -> bool:
    """Whether a stored row was scored by today's task definition (isomer rows scored with
    GuacaMol's isomer definition before 2026-12-03 are not)."""
    if row is None:
        return False
    return row["task"] not in PMO_ISOMER_TASKS or row.get("isomer_scoring") == "tdc"


# -- reporting -----------------------------------------------------------------------------
def _cell(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.3f} (1 seed)"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} ({len(values)})"


def _sum_spread(
    by: dict[tuple[str, str], list[dict[str, Any]]], strategy: str, tasks: list[str]
) -> str:
    """`` ± std`` of the per-seed sums when every task has the same two or more seeds (a seed's
    sum is over all the tasks, so a missing run would make the sums incomparable)."""
    per_task = [{r["seed"]: r["auc_top10"] for r in by[(t, strategy)]} for t in tasks]
    seeds = set(per_task[0]) if per_task else set()
    if len(seeds) < 2 or any(set(runs) != seeds for runs in per_task):
        return ""
    sums = [sum(runs[seed] for runs in per_task) for seed in sorted(seeds)]
    return f" ± {np.std(sums, ddof=1):.3f} ({len(sums)} seeds)"


def markdown(payload: dict[str, Any]) -> str:
    stale = [r for r in payload.get("runs", {}).values() if not _current(r)]
    rows = [r for r in payload.get("runs", {}).values() if _current(r)]
    strategies = sorted({r["strategy"] for r in rows}, key=lambda s: (s == "screening", s))
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["task"], r["strategy"]), []).append(r)
    published = list(PUBLISHED)
    lines = [
        "# PMO benchmark (20 oracle-free tasks), AUC top-10",
        "",
        f"Budget {payload.get('budget', PMO_BUDGET)} oracle calls (distinct valid molecules, "
        "as PMO counts them). Cells: mean ± sample std over seeds (n). Starting points / screening "
        "molecules: random MOSES-train molecules (seeded). Published columns: PMO leaderboard "
        "(REINVENT, Graph GA, screening; mean of 5 seeds) and Genetic GFN (7 tasks, "
        "anchors.md section 8); see the header of benchmarks/pmo.py for sources.",
        "",
        "| task | " + " | ".join(strategies + [f"{p} (published)" for p in published]) + " |",
        "|---|" + "---|" * (len(strategies) + len(published)),
    ]
    for task in PMO_TASKS:
        ours = [_cell([r["auc_top10"] for r in by.get((task, s), [])]) for s in strategies]
        theirs = [PUBLISHED[p].get(task) for p in published]
        cells = ours + ["" if v is None else f"{v:.3f}" for v in theirs]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "Sums of AUC top-10 over the tasks both sides have:", ""]
    lines += [
        "| ours | tasks | runs (stopped on convergence) | ours (sum of seed means) | "
        + " | ".join(published)
        + " |"
    ]
    lines += ["|---|---|---|---|" + "---|" * len(published)]
    for s in strategies:
        done = [t for t in PMO_TASKS if (t, s) in by]
        runs = [r for t in done for r in by[(t, s)]]
        budget = payload.get("budget", PMO_BUDGET)
        early = sum(1 for r in runs if r.get("patience") and r["n_calls"] < budget)
        means = {t: float(np.mean([r["auc_top10"] for r in by[(t, s)]])) for t in done}
        cells = []
        for p in published:
            common = [t for t in done if PUBLISHED[p].get(t) is not None]
            theirs = sum(PUBLISHED[p][t] or 0.0 for t in common)
            cells.append(
                f"{theirs:.3f} vs ours {sum(means[t] for t in common):.3f} (n={len(common)})"
            )
        lines.append(
            f"| {s} | {len(done)} | {len(runs)} ({early}) | {sum(means.values()):.3f}"
            f"{_sum_spread(by, s, done)} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Published 23-task sums (include DRD2, GSK3B, JNK3, which we cannot run offline): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED_23_TASK_SUMS.items())
        + ".",
        "",
        "Seconds per run, wall (/ process CPU where recorded), one CPU thread on a shared "
        "2-core machine, mean over seeds:",
        "",
        "| task | " + " | ".join(strategies) + " |",
        "|---|" + "---|" * len(strategies),
    ]

    def seconds(runs: list[dict[str, Any]]) -> str:
        wall = f"{np.mean([r['wall_s'] for r in runs]):.0f}"
        cpus = [r["cpu_s"] for r in runs if r.get("cpu_s") is not None]
        return f"{wall} / {np.mean(cpus):.0f}" if cpus else wall

    for task in PMO_TASKS:
        cells = [seconds(by[(task, s)]) if (task, s) in by else "" for s in strategies]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    if stale:
        lines += [
            "",
            f"Left out, to be rerun: {len(stale)} isomer-task rows scored with GuacaMol's "
            "isomer definition: "
            + ", ".join(sorted(_key(r["task"], r["strategy"], r["seed"]) for r in stale))
            + ".",
        ]
    lines += ["", "Commands (one per distinct invocation):", ""]
    for command in sorted({r["command"] for r in rows}):
        lines.append(f"- `{command}`")
    for note in payload.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=None)
    parser.add_argument("--budget", type=int, default=PMO_BUDGET)
    parser.add_argument("--tasks", default=",".join(PMO_TASKS))
    parser.add_argument("--strategies", default="graph-ga,screening")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--corpus-size", type=int, default=100_000)
    parser.add_argument("--prior", default="clm", help="language-model prior (name or dir)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--rerun", action="store_true", help="rerun rows already present")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--report", action="store_true", help="only rewrite the markdown")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    if args.report:
        with locked_results(out):
            pass
        return
    tasks = [t for t in args.tasks.split(",") if t]
    strategies = [s for s in args.strategies.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    unknown = set(tasks) - set(PMO_TASKS) | set(strategies) - set(STRATEGIES) - {"screening"}
    if unknown:
        parser.error(f"unknown task or strategy: {sorted(unknown)}")
    root = data_root(args.data)
    with locked_results(out) as payload:
        if payload["runs"] and payload["budget"] != args.budget:
            parser.error(f"{out} holds budget {payload['budget']}; pass another --out")
        payload["budget"] = args.budget
    start = time.perf_counter()
    for seed in seeds:
        for task in tasks:
            for strategy in strategies:
                if args.max_minutes and time.perf_counter() - start > 60 * args.max_minutes:
                    print("--max-minutes reached; stopping before the next run", flush=True)
                    return
                key = _key(task, strategy, seed)
                with locked_results(out) as payload:
                    present = _current(payload["runs"].get(key))
                if present and not args.rerun:
                    print(f"{task} {strategy} seed {seed}: present, skipped", flush=True)
                    continue
                row = run_one(task, strategy, seed, args, root)
                with locked_results(out) as payload:
                    old = payload["runs"].get(key)
                    if old is not None and not _current(old):  # kept for the record
                        payload.setdefault("superseded", {})[key] = old
                    payload["runs"][key] = row
                short = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                print(json.dumps(short), flush=True)


if __name__ == "__main__":
    main()
