"""The only readers of input tables: CSV, TSV, parquet, SDF and SMILES files.

Every reader returns a :class:`pandas.DataFrame` with one row per input record. SDF
records that RDKit cannot read become rows with an empty SMILES and a ``_read_error``
reason, so that they are reported rather than silently skipped.

:func:`iter_table` reads the same files in chunks of a fixed number of rows, so that a
command over a table of any length holds one chunk at a time; its chunks have the columns
and dtypes that :func:`read_table` gives the whole file (see :func:`iter_table`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from matfuse.chem.standardize import quiet_rdkit

READ_ERROR_COLUMN = "_read_error"
#: Rows per chunk of :func:`iter_table` unless told otherwise.
DEFAULT_CHUNK_ROWS = 10_000
#: Rows per partition of ``matfuse screen`` unless told otherwise: one worker's unit of
#: work and of resume (here, not in the screening module, so the CLI can name it cheaply).
DEFAULT_PARTITION_ROWS = 50_000


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table of molecules; the format is chosen by the file extension.

    Supported: ``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``, ``.sdf``/``.sd``,
    ``.smi``/``.smiles`` (whitespace-separated SMILES and optional name). Compressed
    CSV (``.csv.gz``) is read by pandas.
    """
    path = Path(path)
    ext = table_ext(path)
    if ext == ".csv":
        return pd.read_csv(path)
    if ext in (".tsv", ".tab"):
        return pd.read_csv(path, sep="\t")
    if ext in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if ext in (".sdf", ".sd"):
        return read_sdf(path)
    return read_smi(path)


def table_ext(path: Path) -> str:
    """The format suffix of an existing input file (``.csv`` for ``x.csv.gz``); else raise."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".gz", ".bz2", ".xz", ".zip") and len(suffixes) > 1:
        ext = suffixes[-2]
    if ext in (".csv", ".tsv", ".tab", ".parquet", ".pq", ".sdf", ".sd", ".smi", ".smiles", ".txt"):
        return ext
    raise ValueError(
        f"unsupported file type {ext!r} for {path.name}: use .csv, .tsv, .parquet, .sdf or .smi"
    )


def iter_table(path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Read a table in chunks of at most ``chunk_rows`` rows, in file order.

    Always at least one chunk (an empty frame with the columns for a table without rows).
    Concatenated, the chunks equal :func:`read_table` of the file, dtypes included: a CSV
    column whose chunks would be read with different dtypes (integers, then a gap that
    makes floats; numbers, then text) is read with the dtype every chunk can hold, found
    by a first, cheap pass, so each value is written back the same whichever chunk it is
    in. SDF files come as one chunk (their columns are the union of every record's
    properties, known only at the end); CSV, TSV (also compressed), parquet and SMILES
    files stream.

    >>> for chunk in iter_table("big.csv", chunk_rows=10_000):  # doctest: +SKIP
    ...     process(chunk)
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk size must be at least one row, not {chunk_rows}")
    path = Path(path)
    ext = table_ext(path)
    if ext in (".csv", ".tsv", ".tab"):
        yield from _iter_delimited(path, "," if ext == ".csv" else "\t", chunk_rows)
    elif ext in (".parquet", ".pq"):
        yield from _iter_parquet(path, chunk_rows)
    elif ext in (".smi", ".smiles", ".txt"):
        yield from _iter_smi(path, chunk_rows)
    else:
        yield read_sdf(path)


def _iter_delimited(path: Path, sep: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with pd.read_csv(path, sep=sep, chunksize=chunk_rows) as reader:
        overrides = _common_dtypes(chunk.dtypes for chunk in reader)
    with pd.read_csv(path, sep=sep, chunksize=chunk_rows, dtype=overrides) as reader:
        yield from reader


def _common_dtypes(chunk_dtypes: Iterable[pd.Series]) -> dict[str, object]:
    """Columns whose chunks disagree on a dtype, and the dtype that holds every chunk.

    Integers and floats meet in ``float64`` (what pandas gives a column with a gap);
    anything else (numbers and text, booleans and gaps) is read as text, which writes back
    what the file says.
    """
    seen: dict[str, set[object]] = {}
    for dtypes in chunk_dtypes:
        for col, dtype in dtypes.items():
            seen.setdefault(str(col), set()).add(dtype)
    out: dict[str, object] = {}
    for col, kinds in seen.items():
        if len(kinds) < 2:
            continue
        numeric = all(
            pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d) for d in kinds
        )
        out[col] = "float64" if numeric else str
    return out


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    schema = handle.schema_arrow
    # a batch without nulls would give int64/bool where the whole file gives float64/object
    maybe = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)]
    with_nulls: set[str] = set()
    if maybe:
        for batch in handle.iter_batches(batch_size=max(chunk_rows, 65_536), columns=maybe):
            names = batch.schema.names
            with_nulls.update(n for n, c in zip(names, batch.columns, strict=True) if c.null_count)
    # numpy ints and bools cannot hold a gap; pandas' nullable dtypes (kept in the file's
    # pandas metadata) can, and come back the same in every batch
    plain = schema.empty_table().to_pandas().dtypes
    casts: dict[str, object] = {
        name: "float64" if dtype.kind in "iu" else object
        for name, dtype in plain.items()
        if name in with_nulls and isinstance(dtype, np.dtype) and dtype.kind in "iub"
    }
    empty = True
    for batch in handle.iter_batches(batch_size=chunk_rows):
        empty = False
        yield _cast(pa.Table.from_batches([batch], schema=schema).to_pandas(), casts)
    if empty:
        yield _cast(schema.empty_table().to_pandas(), casts)


def _cast(frame: pd.DataFrame, casts: dict[str, object]) -> pd.DataFrame:
    todo = {c: d for c, d in casts.items() if c in frame.columns}
    return frame.astype(todo) if todo else frame


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
    return _smi_frame(list(_smi_records(path)))


def _iter_smi(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    records: list[tuple[str, str | None]] = []
    empty = True
    for record in _smi_records(path):
        records.append(record)
        if len(records) == chunk_rows:
            yield _smi_frame(records)
            records, empty = [], False
    if records or empty:
        yield _smi_frame(records)


def _smi_records(path: str | Path) -> Iterator[tuple[str, str | None]]:
    """``(smiles, name or None)`` per line, skipping blanks, comments and a header line."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if parts[0].lower() == "smiles":  # header line
                continue
            yield parts[0], parts[1] if len(parts) > 1 else None


def _smi_frame(records: list[tuple[str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame({"smiles": [r[0] for r in records], "name": [r[1] for r in records]})
