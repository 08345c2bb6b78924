"""Encoding throughput (molecules/second, one process) on MOSES molecules.

Each matfuse encoder is timed from SMILES strings to a feature matrix (parsing included),
side by side with the same fingerprint computed by scikit-fingerprints and datamol in the
same run. Slow encoders (Mordred, RDKit descriptors, ChemNet) are timed on a subset.

``--pipeline MODEL_DIR`` instead profiles a saved model end to end (issue 18): parsing,
each encoder alone, fusion + model, and the whole ``predict_table``, in CPU seconds of this
process (``time.process_time``) as well as wall seconds, so that a loaded shared machine
does not hide where the time goes; and the cost of each RDKit 2-D descriptor, beside its
gain importance in an XGBoost model on ESOL and FreeSolv (FM4M splits, train part).

    python benchmarks/throughput.py [--data DIR] [--n 10000]
    python benchmarks/throughput.py --pipeline MODEL_DIR [--n 1000] --out results/x.json
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from _data import BENCHMARK_ENCODERS, RESULTS, data_root, provenance, write_json
from matfuse.encoders import get_encoder

SUBSET = {"mordred": 300, "rdkit2d": 2000, "chemnet": 5000}


def load_moses(root, n: int) -> list[str]:
    path = root / "molecules" / "moses" / "test.csv.gz"
    with gzip.open(path, "rt") as handle:
        return pd.read_csv(handle)["SMILES"].head(n).tolist()


def timed(fn: Callable[[list[str]], object], smiles: list[str], repeats: int = 1) -> float:
    """Best-of-``repeats`` molecules per second."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn(smiles)
        best = min(best, time.perf_counter() - start)
    return len(smiles) / best


def reference_fingerprints() -> dict[str, dict[str, Callable[[list[str]], object]]]:
    """The same fingerprints from other libraries, keyed by our encoder name."""
    import datamol as dm
    from skfp.fingerprints import (
        AtomPairFingerprint,
        ECFPFingerprint,
        MACCSFingerprint,
        TopologicalTorsionFingerprint,
    )

    def skfp(cls, **kw):
        fp = cls(n_jobs=1, **kw)
        return lambda smi: fp.transform(smi)

    def datamol(fp_type, **kw):
        return lambda smi: np.array([dm.to_fp(dm.to_mol(s), fp_type=fp_type, **kw) for s in smi])

    return {
        "ecfp": {
            "scikit-fingerprints": skfp(ECFPFingerprint, fp_size=2048, radius=2),
            "datamol": datamol("ecfp", fpSize=2048, radius=2),
        },
        "ecfp-count": {
            "scikit-fingerprints": skfp(ECFPFingerprint, fp_size=2048, radius=2, count=True),
            "datamol": datamol("ecfp-count", fpSize=2048, radius=2),
        },
        "maccs": {"scikit-fingerprints": skfp(MACCSFingerprint)},
        "atompair": {
            "scikit-fingerprints": skfp(AtomPairFingerprint, fp_size=2048, count=True),
        },
        "torsion": {
            "scikit-fingerprints": skfp(TopologicalTorsionFingerprint, fp_size=2048, count=True),
        },
    }


def clocked(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def pipeline_profile(model_dir: str, smiles: list[str]) -> dict[str, object]:
    """Where a saved model's prediction time goes, stage by stage, in one process."""
    from matfuse.fusion import compute_blocks
    from matfuse.pipeline import PropertyModel

    model = PropertyModel.load(model_dir)
    n = len(smiles)
    stages: dict[str, tuple[float, float]] = {}
    parsed: list[object] = []
    stages["parse + standardise"] = clocked(lambda: parsed.append(model.parse(smiles)))
    batch = parsed[0]
    blocks: dict[str, np.ndarray] = {}
    for name in model.encoders:
        stages[f"encode {name}"] = clocked(
            lambda name=name: blocks.update(
                {k: b.values for k, b in compute_blocks([name], batch, model.standardize).items()}
            )
        )
    stages["fusion + model (with std/interval)"] = clocked(
        lambda: model.predict_with_uncertainty(blocks)
    )
    whole = clocked(lambda: model.predict_table(smiles, all_columns=True))
    parts_cpu = sum(cpu for _, cpu in stages.values())
    rows = [
        {
            "stage": stage,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "mol_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
            "share_of_cpu": round(cpu / parts_cpu, 3),
        }
        for stage, (wall, cpu) in stages.items()
    ]
    return {
        "model": str(model_dir),
        "encoders": list(model.encoders),
        "n_molecules": n,
        "stages": rows,
        "sum_of_parts_cpu_s": round(parts_cpu, 2),
        "end_to_end_cpu_s": round(whole[1], 2),
        "end_to_end_wall_s": round(whole[0], 2),
        "end_to_end_over_sum_of_parts": round(whole[1] / parts_cpu, 3),
        "end_to_end_mol_per_cpu_s": round(n / whole[1], 1),
        "projected_mol_per_hour_2_dedicated_cores": round(2 * 3600 * n / whole[1]),
    }


def descriptor_costs(smiles: list[str]) -> dict[str, float]:
    """CPU milliseconds per molecule of each RDKit 2-D descriptor."""
    import warnings

    from rdkit import Chem
    from rdkit.Chem import Descriptors

    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    costs: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in Descriptors._descList:
            start = time.process_time()
            for mol in mols:
                try:
                    fn(mol)
                except Exception:  # noqa: BLE001 - RDKit raises anything on odd molecules
                    pass
            costs[name] = 1000 * (time.process_time() - start) / len(mols)
    return costs


def descriptor_importance(root: Path, task: str, target: str) -> dict[str, float]:
    """Gain importance of each rdkit2d column in an XGBoost model on the fused default blocks."""
    from xgboost import XGBRegressor

    from matfuse.fusion import compute_blocks

    frame = pd.read_csv(root / "molecules" / "moleculenet" / task / "train.csv")
    blocks = compute_blocks(["ecfp-count", "rdkit2d", "maccs"], frame["smiles"].tolist())
    X = np.hstack([blocks[k].values for k in ("ecfp-count", "rdkit2d", "maccs")])
    y = frame[target].to_numpy(dtype=float)
    ok = np.isfinite(y)
    model = XGBRegressor(n_estimators=300, max_depth=6, learning_rate=0.05, n_jobs=1)
    model.fit(X[ok], y[ok])
    gain = model.get_booster().get_score(importance_type="total_gain")
    width = blocks["ecfp-count"].values.shape[1]
    from rdkit.Chem import Descriptors

    names = [n for n, _ in Descriptors._descList]
    total = sum(gain.values())
    return {n: gain.get(f"f{width + j}", 0.0) / total for j, n in enumerate(names)}


def profile_main(args: argparse.Namespace) -> None:
    root = data_root(args.data)
    smiles = load_moses(root, args.n)
    payload: dict[str, object] = {"provenance": provenance()}
    payload["load_1min_at_start"] = round(__import__("os").getloadavg()[0], 2)
    payload["pipeline"] = pipeline_profile(args.pipeline, smiles)
    print(payload["pipeline"], flush=True)
    costs = descriptor_costs(smiles[:300])
    esol = descriptor_importance(root, "esol", "measured log solubility in mols per litre")
    freesolv = descriptor_importance(root, "freesolv", "expt")
    total = sum(costs.values())
    table = pd.DataFrame(
        {
            "descriptor": list(costs),
            "cpu_ms_per_mol": [round(costs[n], 4) for n in costs],
            "share_of_rdkit2d_cpu": [round(costs[n] / total, 4) for n in costs],
            "gain_share_esol": [round(esol[n], 5) for n in costs],
            "gain_share_freesolv": [round(freesolv[n], 5) for n in costs],
        }
    ).sort_values("cpu_ms_per_mol", ascending=False)
    costly = table.head(15)
    payload["rdkit2d"] = {
        "n_molecules_timed": 300,
        "total_cpu_ms_per_mol": round(total, 3),
        "costliest_15": costly.to_dict(orient="records"),
        "costliest_15_share_of_cpu": round(float(costly["share_of_rdkit2d_cpu"].sum()), 3),
        "costliest_15_gain_share_esol": round(float(costly["gain_share_esol"].sum()), 4),
        "costliest_15_gain_share_freesolv": round(float(costly["gain_share_freesolv"].sum()), 4),
        "rdkit2d_gain_share_esol": round(sum(esol.values()), 4),
        "rdkit2d_gain_share_freesolv": round(sum(freesolv.values()), 4),
    }
    payload["load_1min_at_end"] = round(__import__("os").getloadavg()[0], 2)
    write_json(Path(args.out), payload)
    print(costly.to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", default=str(RESULTS / "throughput.json"))
    parser.add_argument("--pipeline", default=None, metavar="MODEL_DIR")
    args = parser.parse_args()
    if args.pipeline:
        profile_main(args)
        return
    smiles = load_moses(data_root(args.data), args.n)
    refs = reference_fingerprints()
    rows = []
    for name in BENCHMARK_ENCODERS:
        subset = smiles[: SUBSET.get(name, len(smiles))]
        # a fresh encoder per repeat: the cache must not make the second run free
        rate = timed(
            lambda s, n=name: (
                get_encoder(n, cache=False).transform(s)
                if n in SUBSET
                else get_encoder(n).transform(s)
            ),
            subset,
            repeats=2,
        )
        row = {"encoder": name, "n_molecules": len(subset), "matfuse_mol_per_s": round(rate, 1)}
        for lib, fn in refs.get(name, {}).items():
            row[f"{lib}_mol_per_s"] = round(timed(fn, subset, repeats=2), 1)
        others = [
            v for k, v in row.items() if k.endswith("_mol_per_s") and k != "matfuse_mol_per_s"
        ]
        if others:
            row["fastest_other_over_matfuse"] = round(max(others) / rate, 3)
        rows.append(row)
        print(row, flush=True)
    write_json(
        Path(args.out),
        {
            "provenance": provenance(),
            "results": rows,
            "note": "single process; SMILES parsing included for every library",
        },
    )
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
