"""Checking and reading files that users upload, with messages a non-programmer can act on.

Uploaded files are only ever *parsed* — by pandas (CSV/TSV), pyarrow (parquet) or RDKit
(SDF/SMILES) — never executed, imported or unpickled. Limits on size, type and row count are
checked before parsing so that one oversized or malformed file cannot stall the server, and
every failure becomes an :class:`UploadError` whose text is shown in the UI as it is.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from matfuse.io.readers import read_table
from matfuse.io.table import MoleculeTable, load_molecule_table

#: Largest accepted upload. Featurising and training on more than ~100k molecules in a
#: browser session is not what the UI is for; the CLI handles big files.
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
#: Extensions accepted by the file pickers (pickle-based formats are deliberately absent).
ALLOWED_EXTENSIONS: tuple[str, ...] = (".csv", ".tsv", ".sdf", ".smi", ".parquet")
MAX_ROWS = 100_000
#: Above this share of unusable rows the user is told that the SMILES column may be wrong.
WARN_INVALID_FRACTION = 0.2
#: Column names recognised as per-row train/valid/test labels ("as provided" split).
SPLIT_COLUMN_NAMES = ("split", "set", "subset", "fold")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "test": "test",
    "testing": "test",
}


class UploadError(ValueError):
    """A problem with an uploaded file, phrased for the person who uploaded it."""


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:.1f} MB" if n_bytes >= 1024 * 1024 else f"{n_bytes} bytes"


def check_upload(path: str | Path | None, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Type and size checks that need no parsing; returns the path if the file may be read."""
    if path is None or str(path) == "":
        raise UploadError("No file was uploaded.")
    path = Path(path)
    if not path.is_file():
        raise UploadError(f"The upload {path.name!r} did not arrive; please upload it again.")
    ext = path.suffix.lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise UploadError(
            f"{path.name}: files of type {ext or '(no extension)'!r} are not accepted. "
            f"Upload one of: {', '.join(ALLOWED_EXTENSIONS)}."
        )
    size = path.stat().st_size
    if size == 0:
        raise UploadError(f"{path.name} is empty.")
    if size > max_bytes:
        raise UploadError(
            f"{path.name} is {_size_text(size)}; the limit is {_size_text(max_bytes)}. "
            "Upload a smaller file (fewer rows or columns), or use the command line "
            "(`matfuse train`) for large data."
        )
    return path


def _sniff_csv_problem(path: Path, sep: str) -> str | None:
    """Find the first line whose field count differs from the header (a precise hint)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=sep)
            header = next(reader, None)
            if header is None:
                return None
            for i, row in enumerate(reader, start=2):
                if row and len(row) != len(header):
                    return f"line {i} has {len(row)} fields but the header has {len(header)}"
                if i > 200_000:
                    break
    except (UnicodeDecodeError, csv.Error):
        return None
    return None


def read_upload(path: str | Path | None, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Read an uploaded table after :func:`check_upload`; every failure is an UploadError."""
    path = check_upload(path)
    ext = path.suffix.lower()
    kind = {".csv": "CSV", ".tsv": "TSV", ".sdf": "SDF", ".smi": "SMILES", ".parquet": "Parquet"}
    try:
        frame = read_table(path)
    except UnicodeDecodeError:
        raise UploadError(
            f"{path.name} is not UTF-8 text, so it cannot be read as {kind[ext]}. "
            "Save it as UTF-8 CSV (or upload .sdf / .parquet)."
        ) from None
    except pd.errors.EmptyDataError:
        raise UploadError(f"{path.name} holds no columns or rows.") from None
    except pd.errors.ParserError as err:
        hint = _sniff_csv_problem(path, "\t" if ext == ".tsv" else ",")
        detail = hint or str(err).strip().splitlines()[-1]
        raise UploadError(
            f"{path.name} is not a well-formed {kind[ext]} file: {detail}. "
            "Check the delimiter and quoting (a comma inside a value must be quoted)."
        ) from None
    except (OSError, ValueError) as err:
        raise UploadError(f"{path.name} could not be read as {kind[ext]}: {err}") from None
    if len(frame) == 0:
        raise UploadError(f"{path.name} has no data rows.")
    if len(frame) > max_rows:
        raise UploadError(
            f"{path.name} has {len(frame):,} rows; the web UI accepts up to {max_rows:,}. "
            "Use the command line for larger sets."
        )
    frame.columns = [str(c) for c in frame.columns]
    if ext == ".csv" and len(frame.columns) == 1 and ";" in str(frame.columns[0]):
        raise UploadError(
            f"{path.name} looks semicolon-separated; save it with commas (or as .tsv)."
        )
    return frame


def provided_split_labels(frame: pd.DataFrame) -> tuple[str | None, list[str] | None]:
    """A column of train/valid/test labels, if the file has one, and its normalised labels."""
    lowered = {c.strip().lower(): c for c in map(str, frame.columns)}
    for name in SPLIT_COLUMN_NAMES:
        col = lowered.get(name)
        if col is None:
            continue
        labels = [_SPLIT_ALIASES.get(str(v).strip().lower()) for v in frame[col]]
        if all(label is not None for label in labels) and "test" in labels:
            return col, [str(label) for label in labels]
    return None, None


def table_from_frame(
    frame: pd.DataFrame, smiles_col: str | None = None, targets: list[str] | None = None
) -> MoleculeTable:
    """Validate molecules (and target columns) of a frame; errors become UploadErrors."""
    try:
        table = load_molecule_table(frame, smiles_col=smiles_col or None, targets=targets or [])
    except (KeyError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        text = str(message).replace("(--smiles-col)", "(choose the SMILES column)")
        raise UploadError(text) from None
    if table.parsed.n_invalid == len(table):
        first = next((e for e in table.errors if e), "")
        raise UploadError(
            f"No row of column {table.smiles_col!r} holds a usable molecule (first problem: "
            f"{first}). Choose the column that holds SMILES."
        )
    return table


def validation_message(table: MoleculeTable) -> str:
    """Markdown summary of what is usable and what is not, with the main reasons."""
    summary = table.summary()
    n, bad = int(summary["rows"]), int(summary["invalid"])
    lines = [f"**{n:,} rows**, SMILES column `{table.smiles_col}`."]
    if bad:
        share = bad / n
        reasons = summary["invalid_reasons"]
        assert isinstance(reasons, dict)
        top = ", ".join(f"{k} ({v})" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        icon = "**Warning:**" if share >= WARN_INVALID_FRACTION else "Note:"
        lines.append(
            f"{icon} {bad:,} of {n:,} rows ({share:.0%}) have a molecule that cannot be used "
            f"and will be skipped: {top}. They are listed under *Rows with problems*."
        )
        if share >= WARN_INVALID_FRACTION:
            lines.append("That is a large share: check that the right SMILES column is selected.")
    else:
        lines.append("Every row holds a valid molecule.")
    dups = int(summary["duplicate_molecules"])
    if dups:
        lines.append(f"Note: {dups} molecules occur on more than one row.")
    return "\n\n".join(lines)
