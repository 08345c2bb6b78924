"""Materials extrapolation benchmark: surrogate family x split, on structures and compositions.

Materials discovery asks for materials unlike the training data, with extreme property
values, so a random split flatters every model. This benchmark fits three families of
surrogate models and scores each under splits of increasing difficulty:

families (structures)
  (i)   ``descriptors``  composition statistics + structure fingerprint -> XGBoost
  (ii)  ``chgnet``       pretrained CHGNet crystal embedding + its energy -> XGBoost
  (iii) ``crystal-graph`` end-to-end graph network trained on the property
  and   ``descriptors+chgnet`` (i) and (ii) fused.
families (compositions): ``composition`` Magpie-style statistics -> XGBoost, and -> RF on
the sets of up to ``--rf-max-rows`` rows.

splits
  ``random``      5-fold cross-validation;
(all through :func:`matfuse.workflow.cross_validate`, on blocks encoded once; every cell
also records the trivial baseline, the training median, on the same folds)
  ``spacegroup``  group k-fold over space groups: no test space group in train
                  (structures only);
  ``ood``         the top 10% of the target as test (and ``ood-bottom``, the bottom 10%).

Data (``--data`` or ``$MATFUSE_DATA``, see shared/data/README.md): ``crystals/perov_5``
(val+test, 7,572 cells, target ``heat_ref``) and ``compositions/matbench/*.csv`` /
``compositions/benchmark/<set>/`` (target ``target``). Writes
``results/materials_extrapolation.json`` and ``.md`` and a family x split figure.

    python benchmarks/materials_extrapolation.py                     # everything
    python benchmarks/materials_extrapolation.py --part structures --epochs 30
    python benchmarks/materials_extrapolation.py --part compositions --tasks expt_gap steels_yield
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from _data import RESULTS, data_root, provenance, write_json
from matfuse.encoders import get_encoder
from matfuse.inputs import InputTable, load_input_table
from matfuse.materials.symmetry import analyze_symmetry
from matfuse.pipeline import PropertyModel
from matfuse.workflow import CrossValidation, cross_validate

STRUCTURE_FAMILIES = {
    "descriptors": ["composition", "structure-descriptors"],
    "chgnet": ["chgnet"],
    "descriptors+chgnet": ["composition", "structure-descriptors", "chgnet"],
}
COMPOSITION_TASKS = ["expt_gap", "steels_yield", "log_kvrh", "dielectric"]
AFLOW_TASKS = [
    "aflow__Egap",
    "aflow__ael_bulk_modulus_vrh",
    "aflow__ael_debye_temperature",
    "aflow__ael_shear_modulus_vrh",
    "aflow__agl_thermal_conductivity_300K",
    "aflow__agl_thermal_expansion_300K",
    "aflow__energy_atom",
]
#: Matbench v0.1 leaderboard (mean MAE over its 5 folds), from shared/anchors.md §3.
ANCHORS = {
    "perovskites": {
        "coGN": 0.0269,
        "ALIGNN": 0.0288,
        "CGCNN v2019": 0.0452,
        "MODNet": 0.0908,
        "RF-SCM/Magpie": 0.2355,
        "CrabNet": 0.4065,
        "Dummy": 0.5660,
    },
    "expt_gap": {
        "Darwin": 0.2865,
        "MODNet": 0.3327,
        "CrabNet": 0.3463,
        "RF-SCM/Magpie": 0.4461,
        "Dummy": 1.1435,
    },
    "steels_yield": {
        "TPOT-Mat": 79.9468,
        "MODNet": 87.7627,
        "RF-SCM/Magpie": 103.5125,
        "CrabNet": 107.3160,
        "Dummy": 229.7445,
    },
}


# ------------------------------------------------------------------------------ folds
def cv_result(cv: CrossValidation, seconds: float) -> dict[str, Any]:
    """One family x split cell: fold MAE mean ± std, RMSE, R², and the baseline's MAE."""
    target = cv.targets[0]
    summary = cv.summary()[target]
    folds = [
        {k: f.metrics["targets"][target][k] for k in ("mae", "rmse", "r2", "n")} for f in cv.folds
    ]
    return {
        "mae": summary["mae"]["mean"],
        "mae_std": summary["mae"]["std"],
        "rmse": summary["rmse"]["mean"],
        "r2": summary["r2"]["mean"],
        "baseline_mae": summary["mae"]["baseline_mean"],
        "folds": folds,
        "seconds": round(seconds, 1),
    }


def run_cv(
    table: InputTable,
    blocks: dict[str, np.ndarray],
    split: dict[str, Any],
    family: list[str] | None,
    model: str,
    seed: int,
    model_params: dict[str, Any] | None = None,
) -> tuple[CrossValidation, float]:
    """``workflow.cross_validate`` on precomputed blocks; ``split`` = folds name + params."""
    start = time.perf_counter()
    cv = cross_validate(
        table,
        encoders=family,
        model=model,
        seed=seed,
        blocks=blocks,
        model_params=model_params,
        progress=False,
        **split,
    )
    return cv, time.perf_counter() - start


def encode(parsed: Any, names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    blocks, rates = {}, {}
    for name in names:
        start = time.perf_counter()
        blocks[name] = get_encoder(name).encode_block(parsed).values
        seconds = time.perf_counter() - start
        rates[name] = round(len(parsed) / seconds, 1)
        print(f"  {name}: {blocks[name].shape} in {seconds:.1f}s ({rates[name]}/s)", flush=True)
    return blocks, rates


#: the splits of both parts, as ``cross_validate`` arguments (``ood`` tails are one fold)
TAIL_SPLITS = {
    "ood": {"folds": "ood", "tail": "top", "test_size": 0.1, "valid_size": 0.0},
    "ood-bottom": {"folds": "ood", "tail": "bottom", "test_size": 0.1, "valid_size": 0.0},
}


def run_structures(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    folder = root / "crystals" / "perov_5"
    frame = pd.concat(
        [pd.read_csv(folder / "val.csv"), pd.read_csv(folder / "test.csv")], ignore_index=True
    )
    if args.limit:
        frame = frame.sample(n=args.limit, random_state=0).reset_index(drop=True)
    table = load_input_table(
        frame[["cif", "heat_ref"]], input_type="structure", input_col="cif", targets=["heat_ref"]
    )
    print(f"perov_5: {len(frame)} structures", flush=True)
    parsed = table.parsed
    # space groups once, shared by every family's group folds
    groups = analyze_symmetry(parsed, symprec=0.1).numbers
    n_groups = len({g for g in groups if g is not None})
    blocks, rates = encode(parsed, ["composition", "structure-descriptors", "chgnet"])
    start = time.perf_counter()
    graph_template = PropertyModel(model="crystal-graph", input_type="structure")
    blocks |= graph_template.blocks(parsed)
    graph_seconds = time.perf_counter() - start
    splits: dict[str, dict[str, Any]] = {
        "random": {"folds": "kfold", "n_folds": 5},
        "spacegroup": {
            "folds": "spacegroup",
            "n_folds": min(5, n_groups),
            "space_groups": groups,
            "valid_size": 0.0,
        },
        **TAIL_SPLITS,
    }
    results: dict[str, dict[str, Any]] = {}
    fold_sizes: dict[str, list[int]] = {}
    families: dict[str, list[str] | None] = {**STRUCTURE_FAMILIES, "crystal-graph": None}
    for family, encoders in families.items():
        results[family] = {}
        model = "crystal-graph" if encoders is None else args.model
        params = {"epochs": args.epochs} if encoders is None else None
        for split_name, split in splits.items():
            cv, seconds = run_cv(table, blocks, split, encoders, model, args.seed, params)
            results[family][split_name] = cv_result(cv, seconds)
            fold_sizes[split_name] = [f.n_test for f in cv.folds]
            r = results[family][split_name]
            print(
                f"  {family:20s} {split_name:11s} MAE {r['mae']:.4f} "
                f"(baseline {r['baseline_mae']:.4f}; {r['seconds']}s)",
                flush=True,
            )
    counts = pd.Series([g for g in groups if g is not None]).value_counts()
    return {
        "dataset": "perov_5 (val+test)",
        "target": "heat_ref",
        "n": len(frame),
        "invalid": parsed.n_invalid,
        "space_groups": {int(k): int(v) for k, v in counts.items()},
        "symprec": 0.1,
        "encode_per_s": rates
        | {"crystal-graph (graph building)": round(len(frame) / graph_seconds, 1)},
        "chgnet_structures_per_s": rates["chgnet"],
        "crystal_graph_epochs": args.epochs,
        "fold_sizes": fold_sizes,
        "results": results,
        "anchors_matbench_perovskites_mae": ANCHORS["perovskites"],
    }


def composition_frames(root: Path, task: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The table of one composition task and, for predefined splits, the test mask."""
    if task in COMPOSITION_TASKS:
        return pd.read_csv(root / "compositions" / "matbench" / f"{task}.csv"), None
    folder = root / "compositions" / "benchmark" / task
    parts = [pd.read_csv(folder / f"{p}.csv") for p in ("train", "val", "test")]
    is_test = np.concatenate(
        [np.zeros(len(parts[0]) + len(parts[1]), bool), np.ones(len(parts[2]), bool)]
    )
    return pd.concat(parts, ignore_index=True), is_test


def run_compositions(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task in args.tasks:
        frame, is_test = composition_frames(root, task)
        formula_col = "formula" if "formula" in frame.columns else frame.columns[0]
        table = load_input_table(
            frame[[formula_col, "target"]],
            input_type="composition",
            input_col=formula_col,
            targets=["target"],
        )
        blocks, rates = encode(table.parsed, ["composition"])
        splits: dict[str, dict[str, Any]] = {
            "random": {"folds": "kfold", "n_folds": 5},
            **TAIL_SPLITS,
        }
        if is_test is not None:
            labels = np.where(is_test, "test", "train").tolist()
            splits["provided"] = {"folds": "predefined", "labels": labels}
        res: dict[str, Any] = {}
        # random forests are slow on the 27k-row AFLOW sets and no better: small sets only
        for model in ("xgboost", "rf") if len(frame) <= args.rf_max_rows else ("xgboost",):
            family = f"composition/{model}"
            res[family] = {}
            for split_name, split in splits.items():
                cv, seconds = run_cv(table, blocks, split, ["composition"], model, args.seed)
                res[family][split_name] = cv_result(cv, seconds)
                r = res[family][split_name]
                print(
                    f"  {task:28s} {family:20s} {split_name:10s} "
                    f"MAE {r['mae']:.4f} (baseline {r['baseline_mae']:.4f})",
                    flush=True,
                )
        out[task] = {
            "n": len(frame),
            "invalid": table.parsed.n_invalid,
            "encode_per_s": rates,
            "results": res,
            "anchors_matbench_mae": ANCHORS.get(task),
        }
    return out


# ---------------------------------------------------------------------------- report
def figure(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = payload["structures"]["results"]
    families, splits = list(res), list(next(iter(res.values())))
    mae = np.array([[res[f][s]["mae"] for s in splits] for f in families])
    fig, ax = plt.subplots(figsize=(1.6 * len(splits) + 2.5, 0.7 * len(families) + 1.8))
    im = ax.imshow(mae, cmap="viridis_r")
    ax.set_xticks(range(len(splits)), splits)
    ax.set_yticks(range(len(families)), families)
    for i in range(len(families)):
        for j in range(len(splits)):
            ax.text(j, i, f"{mae[i, j]:.3f}", ha="center", va="center", color="w", fontsize=9)
    ax.set_title("perov_5 heat_ref: MAE (eV/atom) by family and split")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(payload: dict[str, Any]) -> str:
    parts = [payload.get("structures", {}), *payload.get("compositions", {}).values()]
    commands = dict.fromkeys(p.get("command", payload["provenance"]["command"]) for p in parts)
    lines = ["# Materials extrapolation benchmark", "", "Produced by (run from `benchmarks/`):", ""]
    lines += [f"- `{c}`" for c in commands] + [""]
    if "structures" in payload:
        s = payload["structures"]
        res = s["results"]
        splits = list(next(iter(res.values())))
        lines += [
            f"## {s['dataset']}, target {s['target']} ({s['n']} structures; space groups at "
            f"symprec {s['symprec']}: {s['space_groups']})",
            "",
            "MAE (mean ± std over folds; the ood tails are one fold). CHGNet embedding throughput: "
            f"{s['chgnet_structures_per_s']} structures/s.",
            "",
            "| family | " + " | ".join(splits) + " |",
            "|---|" + "---|" * len(splits),
        ]
        for fam, row in res.items():
            cells = [
                f"{row[sp]['mae']:.4f}"
                + (f" ± {row[sp]['mae_std']:.4f}" if len(row[sp]["folds"]) > 1 else "")
                for sp in splits
            ]
            lines.append(f"| {fam} | " + " | ".join(cells) + " |")
        first = next(iter(res.values()))
        if all("baseline_mae" in first[sp] for sp in splits):
            cells = [f"{first[sp]['baseline_mae']:.4f}" for sp in splits]
            lines.append("| trivial baseline (training median) | " + " | ".join(cells) + " |")
        anchors = ", ".join(f"{k} {v}" for k, v in s["anchors_matbench_perovskites_mae"].items())
        lines += ["", f"Matbench perovskites (18,928 cells, 5-fold) MAE: {anchors}.", ""]
    if "compositions" in payload:
        lines += ["## Compositions (MAE; random = 5-fold CV, provided = the set's own test)", ""]
        lines += [
            "| task | family | "
            + " | ".join(["random", "ood", "ood-bottom", "provided"])
            + " | Matbench anchors |",
            "|---|---|---|---|---|---|---|",
        ]
        for task, t in payload["compositions"].items():
            anchors = t["anchors_matbench_mae"]
            anchor_text = ", ".join(f"{k} {v}" for k, v in anchors.items()) if anchors else "-"
            for fam, row in t["results"].items():
                cells = [
                    f"{row[sp]['mae']:.4g}" if sp in row else "-"
                    for sp in ("random", "ood", "ood-bottom", "provided")
                ]
                lines.append(f"| {task} | {fam} | " + " | ".join(cells) + f" | {anchor_text} |")
            first = next(iter(t["results"].values()))
            if all("baseline_mae" in r for r in first.values()):
                cells = [
                    f"{first[sp]['baseline_mae']:.4g}" if sp in first else "-"
                    for sp in ("random", "ood", "ood-bottom", "provided")
                ]
                lines.append(f"| {task} | trivial baseline | " + " | ".join(cells) + " | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--part", choices=["all", "structures", "compositions"], default="all")
    parser.add_argument("--tasks", nargs="*", default=COMPOSITION_TASKS + AFLOW_TASKS)
    parser.add_argument("--epochs", type=int, default=30, help="crystal-graph training epochs")
    parser.add_argument("--model", default="xgboost", help="model of the embedding families")
    parser.add_argument("--limit", type=int, default=0, help="subsample perov_5 (quick runs)")
    parser.add_argument("--rf-max-rows", type=int, default=6000, help="RF only up to this size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "materials_extrapolation.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = data_root(args.data)
    out = Path(args.out)
    payload: dict[str, Any] = __import__("json").loads(out.read_text()) if out.exists() else {}
    payload["provenance"] = provenance()
    start = time.perf_counter()
    if args.part in ("all", "structures"):
        payload["structures"] = run_structures(root, args)
        payload["structures"]["command"] = payload["provenance"]["command"]
        figure(payload, out.with_suffix(".png"))
    if args.part in ("all", "compositions"):
        # merged per task, so that rerunning a few tasks keeps the others' results
        fresh = run_compositions(root, args)
        for entry in fresh.values():
            entry["command"] = payload["provenance"]["command"]
        payload.setdefault("compositions", {}).update(fresh)
    payload["wall_seconds_last_run"] = round(time.perf_counter() - start, 1)
    write_json(out, payload)
    out.with_suffix(".md").write_text(markdown(payload))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
