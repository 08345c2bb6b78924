"""Encoding throughput (molecules/second, one process) on MOSES molecules.

Each matfuse encoder is timed from SMILES strings to a feature matrix (parsing included),
side by side with the same fingerprint computed by scikit-fingerprints and datamol in the
same run. Slow encoders (Mordred, RDKit descriptors, ChemNet) are timed on a subset.

    python benchmarks/throughput.py [--data DIR] [--n 10000]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", default=str(RESULTS / "throughput.json"))
    args = parser.parse_args()
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
