"""Where screening time goes (issue 18): each RDKit 2-D descriptor, and each stage of a screen.

1. ``descriptors``: the CPU cost of each of RDKit's ~217 descriptor functions on MOSES
   molecules, timed call by call in the order ``Descriptors.CalcMolDescriptors`` runs them
   (so a descriptor that reuses an intermediate cached on the molecule by an earlier one,
   such as the Gasteiger charges or BCUT2D's eigenvalues, is charged only what it adds),
   beside its largest absolute Spearman correlation with any other descriptor on the same
   molecules (close to 1: a near copy of another column, little new information) and
   whether ``rdkit2d-fast`` keeps it.
2. ``stages``: one partition of MOSES rows through every step a screen worker runs, each
   timed alone in CPU seconds of this process: read the rows from a CSV.gz, parse and
   standardise, each encoder, fusion + model (mean, std, interval), the objective, parquet
   writing; then the whole worker task (:func:`matfuse.workflow.screen._run_partition`)
   end to end, and the ratio of the two (the issue's goal: within 1.1x).

CPU seconds (``time.process_time``), not wall time, are what this reports: the machine is
shared, and wall time is not a property of the code.

3. ``--choose``: whether ``rdkit2d-fast`` may replace ``rdkit2d`` in the default set: the
   default fused set (ecfp-count + descriptors + maccs, model ``auto``, uncertainty off, as
   ``compare_representations`` scores) with either descriptor block, trained on the FM4M
   train split of ESOL, FreeSolv and BACE and scored on the test split, three seeds, mean
   +- std (``screening_fast_choice.{json,md}``). The switch rule: ``-fast`` is no worse
   than ``rdkit2d`` by more than one std on every task.

    python benchmarks/screening_profile.py --model MODEL_DIR [--n 2000] [--rows 2000]
    python benchmarks/screening_profile.py --choose [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _data import RESULTS, data_root, provenance, write_json


def load_moses(root: Path, n: int, skip: int = 0) -> list[str]:
    path = root / "molecules" / "moses" / "train.csv.gz"
    with gzip.open(path, "rt") as handle:
        return pd.read_csv(handle, nrows=skip + n)["SMILES"].iloc[skip:].tolist()


def clocked(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def descriptor_profile(smiles: list[str]) -> dict[str, Any]:
    """Marginal CPU cost of each descriptor in ``CalcMolDescriptors`` order, and redundancy."""
    from rdkit.Chem import Descriptors
    from scipy.stats import spearmanr

    from matfuse.chem.standardize import parse_smiles, quiet_rdkit
    from matfuse.encoders.descriptors import FAST_DROPPED

    mols = [m for m in parse_smiles(smiles).mols if m is not None]
    names = [n for n, _ in Descriptors._descList]
    cost = np.zeros(len(names))
    values = np.full((len(mols), len(names)), np.nan)
    clock = time.process_time_ns
    with quiet_rdkit(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, mol in enumerate(mols):
            for j, (_, fn) in enumerate(Descriptors._descList):
                start = clock()
                try:
                    values[i, j] = fn(mol)
                except Exception:  # noqa: BLE001 - as CalcMolDescriptors: a missing value
                    pass
                cost[j] += clock() - start
    values[~np.isfinite(values)] = np.nan
    ms = cost / 1e6 / len(mols)
    varying = np.nanstd(values, axis=0) > 0
    rho = np.zeros(len(names))
    if varying.sum() > 1:
        cols = np.flatnonzero(varying)
        filled = np.where(np.isnan(values[:, cols]), np.nanmedian(values[:, cols], axis=0), 0)
        filled = np.where(np.isnan(values[:, cols]), filled, values[:, cols])
        corr = np.abs(spearmanr(filled).statistic)
        np.fill_diagonal(corr, 0.0)
        rho[cols] = np.nanmax(corr, axis=1)
    table = pd.DataFrame(
        {
            "descriptor": names,
            "cpu_ms_per_mol": np.round(ms, 4),
            "share_of_rdkit2d_cpu": np.round(ms / ms.sum(), 4),
            "max_abs_spearman_with_another": np.round(rho, 3),
            "constant_on_these_molecules": ~varying,
            "kept_by_rdkit2d_fast": [n not in FAST_DROPPED for n in names],
        }
    ).sort_values("cpu_ms_per_mol", ascending=False)
    kept = table["kept_by_rdkit2d_fast"]
    return {
        "n_molecules": len(mols),
        "total_cpu_ms_per_mol": round(float(ms.sum()), 3),
        "kept_cpu_ms_per_mol_timed_this_way": round(float(table["cpu_ms_per_mol"][kept].sum()), 3),
        "dropped": sorted(FAST_DROPPED),
        "dropped_share_of_cpu": round(float(table["share_of_rdkit2d_cpu"][~kept].sum()), 3),
        "costliest_25": table.head(25).to_dict(orient="records"),
        "all": table.to_dict(orient="records"),
    }


def stage_profile(model_dir: str, smiles: list[str], rows: int) -> dict[str, Any]:
    """One partition of ``rows`` MOSES rows, stage by stage, then the worker task whole."""
    from matfuse.fusion import compute_blocks
    from matfuse.inputs.table import load_input_table
    from matfuse.pipeline import PropertyModel
    from matfuse.workflow.library import read_rows, scan_file
    from matfuse.workflow.screen import Partition, _run_partition, _worker_model
    from matfuse.workflow.screen_objective import objective_source, score_frame, worker_objective

    work = Path(tempfile.mkdtemp(prefix="matfuse-profile-"))
    library = work / "library.csv.gz"
    with gzip.open(library, "wt") as handle:
        pd.DataFrame({"smiles": smiles[:rows]}).to_csv(handle, index=False)
    info = scan_file(library).with_text(["smiles"])
    model = PropertyModel.load(model_dir)
    spec = objective_source(
        {
            "terms": [
                {
                    "property": "model",
                    "path": str(Path(model_dir).resolve()),
                    "min": -4.0,
                    "max": -2.0,
                }
            ]
        }
    )
    objective = worker_objective(spec)
    stages: dict[str, tuple[float, float]] = {}

    chunk, *t = clocked(lambda: read_rows(info, 0, rows))
    stages["read rows (csv.gz)"] = (t[0], t[1])
    table, *t = clocked(
        lambda: load_input_table(
            chunk, input_type="molecule", input_col=["smiles"], standardize=model.standardize
        )
    )
    stages["parse + standardise"] = (t[0], t[1])
    parsed = table.parsed
    blocks: dict[str, np.ndarray] = {}
    for name in model.encoders:
        out, *t = clocked(lambda name=name: compute_blocks([name], parsed, model.standardize))
        blocks.update({k: b.values for k, b in out.items()})
        stages[f"encode {name}"] = (t[0], t[1])
    _, *t = clocked(lambda: model.predict_with_uncertainty(blocks))
    stages["fusion + model (mean, std, interval)"] = (t[0], t[1])
    frame = model.predict_table(parsed, all_columns=True)
    frame = pd.concat([chunk, frame.drop(columns=["input"])], axis=1)
    scored, *t = clocked(
        lambda: score_frame(objective, frame, str(Path(model_dir).resolve()), "smiles", 0.1)
    )
    stages["objective"] = (t[0], t[1])
    _, *t = clocked(lambda: scored.to_parquet(work / "x.parquet", index=False))
    stages["write parquet"] = (t[0], t[1])
    parts_cpu = sum(cpu for _, cpu in stages.values())

    part = Partition(
        file=info,
        file_index=0,
        chunk_index=0,
        start=0,
        stop=rows,
        row_offset=0,
        columns=(("smiles", "molecule"),),
        out=str(work / "part.parquet"),
        model_dir=str(Path(model_dir).resolve()),
        objective=spec,
    )
    _worker_model(part.model_dir)  # loaded once per worker, as in a screen
    _, wall, cpu = clocked(lambda: _run_partition(part))
    return {
        "model": str(model_dir),
        "encoders": list(model.encoders),
        "rows": rows,
        "stages": [
            {
                "stage": stage,
                "wall_s": round(wall_s, 3),
                "cpu_s": round(cpu_s, 3),
                "cpu_ms_per_row": round(1000 * cpu_s / rows, 4),
                "share_of_cpu": round(cpu_s / parts_cpu, 3),
            }
            for stage, (wall_s, cpu_s) in stages.items()
        ],
        "sum_of_parts_cpu_s": round(parts_cpu, 3),
        "worker_task_cpu_s": round(cpu, 3),
        "worker_task_wall_s": round(wall, 3),
        "worker_task_over_sum_of_parts": round(cpu / parts_cpu, 3),
        "worker_task_rows_per_cpu_s": round(rows / cpu, 1),
        "projected_rows_per_hour_2_dedicated_cores": round(2 * 3600 * rows / cpu),
    }


#: Published test-split figures on the same FM4M splits (shared/anchors.md, SMI-TED preprint
#: Tables 3-4): ESOL/FreeSolv RMSE, BACE ROC-AUC (%).
PUBLISHED = {
    "esol": "SMI-TED289M fine-tuned 0.6112 +- 0.0096; D-MPNN 0.98 +- 0.26",
    "freesolv": "SMI-TED289M fine-tuned 1.2233 +- 0.0029; D-MPNN 2.18 +- 0.91",
    "bace": "SMI-TED289M fine-tuned 88.24 +- 0.50; MoLFormer 86.3 +- 0.6 (%)",
}
CHOICE_TASKS = {
    "esol": ("measured log solubility in mols per litre", "rmse"),
    "freesolv": ("expt", "rmse"),
    "bace": ("Class", "roc_auc"),
}


def choose_fast(root: Path, seeds: list[int]) -> dict[str, Any]:
    """Test-split scores of the default fused set with ``rdkit2d`` and with ``-fast``.

    The descriptor block is computed once per molecule with ``rdkit2d``; ``rdkit2d-fast``'s
    block is its columns (the same values, as the encoder tests check).
    """
    from sklearn.metrics import mean_squared_error, roc_auc_score

    from matfuse.encoders import get_encoder
    from matfuse.fusion import compute_blocks
    from matfuse.pipeline import PropertyModel

    full = list(get_encoder("rdkit2d").descriptor_names())
    keep = [full.index(n) for n in get_encoder("rdkit2d-fast").descriptor_names()]
    out: dict[str, Any] = {}
    for task, (target, metric) in CHOICE_TASKS.items():
        folder = root / "molecules" / "moleculenet" / task
        frames = {s: pd.read_csv(folder / f"{s}.csv") for s in ("train", "test")}
        blocks = {
            s: {
                k: b.values
                for k, b in compute_blocks(
                    ["ecfp-count", "rdkit2d", "maccs"], f["smiles"].tolist()
                ).items()
            }
            for s, f in frames.items()
        }
        scores: dict[str, list[float]] = {"rdkit2d": [], "rdkit2d-fast": []}
        cpu: dict[str, float] = {"rdkit2d": 0.0, "rdkit2d-fast": 0.0}
        for variant in scores:

            def pick(b: dict[str, np.ndarray], variant: str = variant) -> dict[str, np.ndarray]:
                if variant == "rdkit2d":
                    return b
                return {
                    "ecfp-count": b["ecfp-count"],
                    "rdkit2d-fast": b["rdkit2d"][:, keep],
                    "maccs": b["maccs"],
                }

            for seed in seeds:
                start = time.process_time()
                model = PropertyModel(
                    encoders=["ecfp-count", variant, "maccs"],
                    uncertainty="none",
                    random_state=seed,
                )
                y = frames["train"][target].to_numpy(dtype=float)
                model.fit_blocks(pick(blocks["train"]), y, target_names=[target])
                pred = model.predict_blocks(pick(blocks["test"]))[:, 0]
                truth = frames["test"][target].to_numpy(dtype=float)
                ok = np.isfinite(pred) & np.isfinite(truth)
                if metric == "rmse":
                    value = float(np.sqrt(mean_squared_error(truth[ok], pred[ok])))
                else:
                    value = float(roc_auc_score(truth[ok], pred[ok]))
                scores[variant].append(value)
                cpu[variant] += time.process_time() - start
                print(task, variant, seed, round(value, 4), flush=True)
        summary = {
            v: {"mean": float(np.mean(x)), "std": float(np.std(x)), "runs": x}
            for v, x in scores.items()
        }
        truth = frames["test"][target].to_numpy(dtype=float)
        if metric == "rmse":  # the trivial baseline: the train mean for every test row
            mean = float(np.nanmean(frames["train"][target].to_numpy(dtype=float)))
            trivial = float(np.sqrt(np.nanmean((truth - mean) ** 2)))
        else:
            trivial = 0.5  # a constant score
        base, fast = summary["rdkit2d"], summary["rdkit2d-fast"]
        sign = 1.0 if metric == "rmse" else -1.0  # + means fast is worse
        worse_by = sign * (fast["mean"] - base["mean"])
        tolerance = max(base["std"], fast["std"])
        out[task] = {
            "metric": metric,
            "test_rows": len(frames["test"]),
            "trivial_baseline": trivial,
            "published": PUBLISHED[task],
            **summary,
            "fast_worse_by": worse_by,
            "one_std": tolerance,
            "fast_within_one_std": bool(worse_by <= tolerance),
            "fit_cpu_s": {k: round(v, 1) for k, v in cpu.items()},
        }
    out["switch_default"] = all(
        v["fast_within_one_std"] for v in out.values() if isinstance(v, dict)
    )
    return out


def choice_markdown(payload: dict[str, Any]) -> str:
    res = payload["results"]
    lines = [
        "# rdkit2d vs rdkit2d-fast in the default fused set (`benchmarks/screening_profile.py`)",
        "",
        f"Command: `{payload['provenance']['command']}`  ",
        f"Date: {payload['provenance']['date']}. ecfp-count + descriptors + maccs, model auto "
        "(uncertainty off), FM4M train split -> test split, seeds "
        f"{payload['seeds']}; mean +- std over seeds.",
        "",
        "| task | metric | trivial baseline | rdkit2d | rdkit2d-fast | fast worse by | "
        "within one std | published (same split) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in CHOICE_TASKS:
        r = res[task]
        lines.append(
            f"| {task} | {r['metric']} | {r['trivial_baseline']:.4f} | "
            f"{r['rdkit2d']['mean']:.4f} +- {r['rdkit2d']['std']:.4f}"
            f" | {r['rdkit2d-fast']['mean']:.4f} +- {r['rdkit2d-fast']['std']:.4f} | "
            f"{r['fast_worse_by']:+.4f} | {'yes' if r['fast_within_one_std'] else 'no'} | "
            f"{r['published']} |"
        )
    lines += [
        "",
        f"Switch the default to rdkit2d-fast: **{'yes' if res['switch_default'] else 'no'}** "
        "(rule: not worse than rdkit2d by more than one std, the larger of the two, on every "
        "task). Trivial baseline: the train mean (RMSE) or a constant score (AUC 0.5). "
        "Published figures: SMI-TED preprint Tables 3-4 via shared/anchors.md (10 seeds, "
        "their own training; ours trains on the train split only, no tuning).",
        "",
    ]
    return "\n".join(lines) + "\n"


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Screening profile (`benchmarks/screening_profile.py`)",
        "",
        f"Command: `{payload['provenance']['command']}`  ",
        f"Date: {payload['provenance']['date']}; {payload['provenance']['machine']}; 1-min load "
        f"average {payload['load_1min_at_start']} at start, {payload['load_1min_at_end']} at "
        "end. CPU seconds of this one process (`time.process_time`), single-threaded.",
        "",
    ]
    for key, title in (("stages", "default model"), ("stages_fast", "rdkit2d-fast model")):
        if key not in payload:
            continue
        s = payload[key]
        lines += [
            f"## One screen partition, stage by stage: {title} ({s['rows']:,} MOSES rows; "
            f"encoders {', '.join(s['encoders'])})",
            "",
            "| stage | CPU s | CPU ms/row | share |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['stage']} | {r['cpu_s']} | {r['cpu_ms_per_row']} | {r['share_of_cpu']:.1%} |"
            for r in s["stages"]
        ]
        lines += [
            f"| **sum of parts** | {s['sum_of_parts_cpu_s']} | "
            f"{1000 * s['sum_of_parts_cpu_s'] / s['rows']:.4f} | |",
            f"| **worker task, end to end** | {s['worker_task_cpu_s']} | "
            f"{1000 * s['worker_task_cpu_s'] / s['rows']:.4f} | "
            f"{s['worker_task_over_sum_of_parts']}x the sum |",
            "",
            f"End to end: {s['worker_task_rows_per_cpu_s']} rows per CPU s, projected "
            f"{s['projected_rows_per_hour_2_dedicated_cores']:,} rows/h on 2 dedicated cores "
            "(worker task only: cluster start-up and the driver are not in this figure; see "
            "screening.md for whole screens).",
            "",
        ]
    d = payload.get("descriptors")
    if d:
        lines += [
            f"## RDKit 2-D descriptors, marginal cost in CalcMolDescriptors order "
            f"({d['n_molecules']:,} MOSES molecules)",
            "",
            f"Total {d['total_cpu_ms_per_mol']} CPU ms per molecule; `rdkit2d-fast` drops "
            f"{len(d['dropped'])} descriptors ({', '.join(d['dropped'])}), "
            f"{d['dropped_share_of_cpu']:.1%} of that time, and computes the E-state indices "
            "once instead of four times.",
            "",
            "| descriptor | CPU ms/mol | share | max abs Spearman with another | kept by fast |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['descriptor']} | {r['cpu_ms_per_mol']} | {r['share_of_rdkit2d_cpu']:.1%} | "
            f"{r['max_abs_spearman_with_another']} | "
            f"{'yes' if r['kept_by_rdkit2d_fast'] else 'no'} |"
            for r in d["costliest_25"]
        ]
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--model", default=None, help="a saved default molecule model")
    parser.add_argument("--choose", action="store_true", help="rdkit2d vs -fast, 3 seeds")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fast-model", default=None, help="the same with rdkit2d-fast")
    parser.add_argument("--n", type=int, default=2000, help="molecules for the descriptors")
    parser.add_argument("--rows", type=int, default=2000, help="rows of the partition")
    parser.add_argument("--out", default=str(RESULTS / "screening_profile.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    root = data_root(args.data)
    if args.choose:
        seeds = [int(x) for x in args.seeds.split(",")]
        choice = {"provenance": provenance(), "seeds": seeds, "results": choose_fast(root, seeds)}
        out = RESULTS / "screening_fast_choice.json"
        write_json(out, choice)
        out.with_suffix(".md").write_text(choice_markdown(choice))
        print(choice_markdown(choice))
        return
    if args.model is None:
        parser.error("--model is required unless --choose")
    payload: dict[str, Any] = {
        "provenance": provenance(),
        "load_1min_at_start": round(os.getloadavg()[0], 2),
    }
    smiles = load_moses(root, max(args.n, args.rows))
    payload["stages"] = stage_profile(args.model, smiles, args.rows)
    print(payload["stages"], flush=True)
    if args.fast_model:
        payload["stages_fast"] = stage_profile(args.fast_model, smiles, args.rows)
        print(payload["stages_fast"], flush=True)
    payload["descriptors"] = descriptor_profile(smiles[: args.n])
    payload["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_json(Path(args.out), payload)
    Path(args.out).with_suffix(".md").write_text(markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
