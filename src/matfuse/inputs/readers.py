"""The only readers of input tables: CSV, TSV, parquet, SDF and SMILES files.

Every reader returns a :class:`pandas.DataFrame` with one row per input record. SDF
records that RDKit cannot read become rows with an empty SMILES and a ``_read_error``
reason, so that they are reported rather than silently skipped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rdkit import Chem

from matfuse.chem.standardize import quiet_rdkit

READ_ERROR_COLUMN = "_read_error"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table of molecules; the format is chosen by the file extension.

    Supported: ``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``, ``.sdf``/``.sd``,
    ``.smi``/``.smiles`` (whitespace-separated SMILES and optional name). Compressed
    CSV (``.csv.gz``) is read by pandas.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".gz", ".bz2", ".xz", ".zip") and len(suffixes) > 1:
        ext = suffixes[-2]
    if ext == ".csv":
        return pd.read_csv(path)
    if ext in (".tsv", ".tab"):
        return pd.read_csv(path, sep="\t")
    if ext in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if ext in (".sdf", ".sd"):
        return read_sdf(path)
    if ext in (".smi", ".smiles", ".txt"):
        return read_smi(path)
    raise ValueError(
        f"unsupported file type {ext!r} for {path.name}: use .csv, .tsv, .parquet, .sdf or .smi"
    )


def read_sdf(path: str | Path) -> pd.DataFrame:
    """Read an SDF into a frame with a ``smiles`` column plus every SD property."""
    rows: list[dict[str, object]] = []
    with quiet_rdkit():
        supplier = Chem.SDMolSupplier(str(path), sanitize=True, removeHs=True)
        for i in range(len(supplier)):
            mol = supplier[i]
            if mol is None:
                rows.append({"smiles": None, READ_ERROR_COLUMN: f"unreadable SDF record {i + 1}"})
                continue
            row: dict[str, object] = dict(mol.GetPropsAsDict(includePrivate=False))
            if mol.HasProp("_Name") and mol.GetProp("_Name"):
                row.setdefault("name", mol.GetProp("_Name"))
            row["smiles"] = Chem.MolToSmiles(mol)
            rows.append(row)
    frame = pd.DataFrame(rows)
    if READ_ERROR_COLUMN not in frame:
        frame[READ_ERROR_COLUMN] = None
    return frame


def read_smi(path: str | Path) -> pd.DataFrame:
    """Read a ``.smi`` file: one SMILES per line, optionally followed by a name."""
    smiles, names = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if parts[0].lower() == "smiles":  # header line
                continue
            smiles.append(parts[0])
            names.append(parts[1] if len(parts) > 1 else None)
    return pd.DataFrame({"smiles": smiles, "name": names})
