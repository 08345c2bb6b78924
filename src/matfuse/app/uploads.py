"""Checking and reading files that users upload, with messages a non-programmer can act on.

Uploaded files are only ever *parsed* — by pandas (CSV/TSV), pyarrow (parquet), RDKit
(SDF/SMILES) or pymatgen/ASE (CIF, POSCAR, extended XYZ) — never executed, imported or
unpickled. Limits on size, type and row count are checked before parsing so that one
oversized or malformed file cannot stall the server, and every failure becomes an
:class:`UploadError` whose text is shown in the UI as it is.

A zip of structure files is read member by member in memory: nothing is extracted to disk,
so a member name such as ``../../etc/x`` cannot write anywhere; such names, links,
encrypted members and oversized members are skipped or flagged, and the total uncompressed
size is capped (a zip bomb stops at the cap). Each structure file becomes one row holding
its file name and its text; a ``.csv`` inside the zip supplies labels keyed by file name.

Structure columns of *tables* may hold file paths in the library (handy on the command
line), but a path typed into an uploaded table must never make the server read its own
files: single-line cells of a structure column are refused before parsing.
"""

from __future__ import annotations

import csv
import io
import logging
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from matfuse.app.kinds import chosen_kind, input_column, kind_view, noun, table_kind
from matfuse.inputs.readers import READ_ERROR_COLUMN, read_table

logger = logging.getLogger(__name__)

#: Largest accepted upload. Featurising and training on more than ~100k molecules in a
#: browser session is not what the UI is for; the CLI handles big files.
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
#: Single structure files accepted directly (and inside a zip).
STRUCTURE_EXTENSIONS: tuple[str, ...] = (".cif", ".mcif", ".vasp", ".poscar", ".xyz", ".extxyz")
TABLE_EXTENSIONS: tuple[str, ...] = (".csv", ".tsv", ".sdf", ".smi", ".parquet")
#: Extensions accepted by the file pickers (pickle-based formats are deliberately absent).
ALLOWED_EXTENSIONS: tuple[str, ...] = (*TABLE_EXTENSIONS, *STRUCTURE_EXTENSIONS, ".zip")
MAX_ROWS = 100_000
#: Zip limits: members read, bytes per structure file, and uncompressed bytes in all.
MAX_ZIP_MEMBERS = 5000
MAX_MEMBER_BYTES = 5 * 1024 * 1024
MAX_ZIP_TOTAL_BYTES = 200 * 1024 * 1024
#: Column names of the rows a structure upload makes.
FILE_COLUMN = "file"
STRUCTURE_COLUMN = "structure"
#: Columns of a labels CSV inside a zip that may name the structure files.
_LABEL_KEY_COLUMNS = ("file", "filename", "file_name", "name", "id", "structure_file", "cif_file")
#: Above this share of unusable rows the user is told that the input column may be wrong.
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
PATH_REFUSED = (
    "one line of text is not a structure: the web UI reads CIF/POSCAR text or uploaded files, "
    "never file paths on the server"
)


class UploadError(ValueError):
    """A problem with an uploaded file, phrased for the person who uploaded it."""


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:.1f} MB" if n_bytes >= 1024 * 1024 else f"{n_bytes} bytes"


def _is_structure_name(name: str) -> bool:
    """Structure files by extension, plus VASP's extension-less POSCAR/CONTCAR names."""
    path = PurePosixPath(name)
    return path.suffix.lower() in STRUCTURE_EXTENSIONS or path.name.upper().startswith(
        ("POSCAR", "CONTCAR")
    )


def check_upload(path: str | Path | None, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Type and size checks that need no parsing; returns the path if the file may be read."""
    if path is None or str(path) == "":
        raise UploadError("No file was uploaded.")
    path = Path(path)
    if not path.is_file():
        raise UploadError(f"The upload {path.name!r} did not arrive; please upload it again.")
    ext = path.suffix.lower()
    if ext not in ALLOWED_EXTENSIONS and not _is_structure_name(path.name):
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


@dataclass
class UploadedTable:
    """An upload read into a frame, plus what the reader learned on the way.

    ``kind`` is set when the file type already says what the inputs are (structure files
    and zips hold structures); ``notes`` are shown under the validation summary.
    """

    frame: pd.DataFrame
    kind: str | None = None
    input_col: str | None = None
    notes: list[str] = field(default_factory=list)


def read_upload(path: str | Path | None, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Read an uploaded file into a frame (see :func:`read_upload_table`)."""
    return read_upload_table(path, max_rows).frame


def read_upload_table(path: str | Path | None, max_rows: int = MAX_ROWS) -> UploadedTable:
    """Read an uploaded table, structure file or zip after :func:`check_upload`.

    Every failure is an :class:`UploadError`.
    """
    path = check_upload(path)
    ext = path.suffix.lower()
    if ext == ".zip":
        uploaded = read_structure_zip(path)
    elif _is_structure_name(path.name):
        uploaded = _single_structure(path)
    else:
        uploaded = UploadedTable(frame=_read_table_file(path))
    if len(uploaded.frame) > max_rows:
        raise UploadError(
            f"{path.name} has {len(uploaded.frame):,} rows; the web UI accepts up to "
            f"{max_rows:,}. Use the command line for larger sets."
        )
    return uploaded


def _read_table_file(path: Path) -> pd.DataFrame:
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
    frame.columns = [str(c) for c in frame.columns]
    if ext == ".csv" and len(frame.columns) == 1 and ";" in str(frame.columns[0]):
        raise UploadError(
            f"{path.name} looks semicolon-separated; save it with commas (or as .tsv)."
        )
    return frame


def _decode(data: bytes, name: str) -> tuple[str | None, str | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, f"{name} is not UTF-8 text"


def _single_structure(path: Path) -> UploadedTable:
    """One uploaded CIF/POSCAR/XYZ file: one row with its name and text."""
    text, error = _decode(path.read_bytes(), path.name)
    if text is None:
        raise UploadError(f"{error}, so it cannot be read as a structure file.")
    frame = pd.DataFrame({FILE_COLUMN: [path.name], STRUCTURE_COLUMN: [text]})
    return UploadedTable(frame=frame, kind="structure", input_col=STRUCTURE_COLUMN)


def _unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member is not read (None when it may be)."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        return "unsafe path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a link"
    if info.flag_bits & 0x1:
        return "encrypted"
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a member; ``None`` if it is larger (sizes in headers lie)."""
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def read_structure_zip(
    path: str | Path,
    max_members: int = MAX_ZIP_MEMBERS,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
) -> UploadedTable:
    """One row per structure file in a zip: ``file`` (its path in the zip) and ``structure``.

    A file that cannot be used (too large, not UTF-8) still gets its row, with the reason in
    the reader's error column, so the preview lists it. Directories, hidden files
    (``.DS_Store``, ``__MACOSX/``) and other types are skipped and counted in the notes.
    One ``.csv`` in the zip is taken as labels: its rows are matched to the files by a
    column of file names (with or without extension) and its other columns are added.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    labels: list[tuple[str, bytes]] = []
    skipped: dict[str, int] = {}
    total = 0
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UploadError(f"{path.name} is not a readable zip file: {err}") from None
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise UploadError(
                f"{path.name} holds {len(members):,} entries; the web UI reads up to "
                f"{max_members:,}. Split it, or use the command line."
            )
        for info in members:
            name = info.filename.replace("\\", "/")
            base = PurePosixPath(name).name
            if info.is_dir() or not base:
                continue
            if base.startswith(".") or name.startswith("__MACOSX/"):
                skipped["hidden files"] = skipped.get("hidden files", 0) + 1
                continue
            reason = _unsafe_member(info)
            if reason is not None:
                logger.warning("zip %s: skipped member %r (%s)", path.name, name, reason)
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            is_structure = _is_structure_name(base)
            if not is_structure and PurePosixPath(base).suffix.lower() != ".csv":
                skipped["other file types"] = skipped.get("other file types", 0) + 1
                continue
            try:
                data = _read_member(archive, info, max_member_bytes)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as err:
                rows.append(_error_row(name, f"unreadable zip member: {err}"))
                continue
            if data is None:
                limit = _size_text(max_member_bytes)
                if is_structure:
                    rows.append(_error_row(name, f"file larger than {limit}"))
                else:
                    skipped[f"tables over {limit}"] = skipped.get(f"tables over {limit}", 0) + 1
                continue
            total += len(data)
            if total > max_total_bytes:
                raise UploadError(
                    f"{path.name} unpacks to more than {_size_text(max_total_bytes)}; "
                    "upload fewer or smaller files."
                )
            if not is_structure:
                labels.append((name, data))
                continue
            text, error = _decode(data, base)
            rows.append(_error_row(name, error) if text is None else _text_row(name, text))
    if not rows:
        raise UploadError(
            f"{path.name} holds no structure files ({', '.join(STRUCTURE_EXTENSIONS)} "
            "or POSCAR/CONTCAR)."
        )
    frame = pd.DataFrame(rows)
    if frame[READ_ERROR_COLUMN].isna().all():
        frame = frame.drop(columns=[READ_ERROR_COLUMN])
    notes = [f"{len(rows):,} structure files read from {path.name}."]
    if skipped:
        detail = ", ".join(f"{n} {why}" for why, n in skipped.items())
        notes.append(f"Skipped: {detail}.")
    if len(labels) == 1:
        frame, note = _merge_labels(frame, *labels[0])
        notes.append(note)
    elif len(labels) > 1:
        notes.append(f"{len(labels)} CSV files found; labels are read only when the zip holds one.")
    return UploadedTable(frame=frame, kind="structure", input_col=STRUCTURE_COLUMN, notes=notes)


def _text_row(name: str, text: str) -> dict[str, Any]:
    return {FILE_COLUMN: name, STRUCTURE_COLUMN: text, READ_ERROR_COLUMN: None}


def _error_row(name: str, error: str | None) -> dict[str, Any]:
    return {FILE_COLUMN: name, STRUCTURE_COLUMN: None, READ_ERROR_COLUMN: error}


def _stem(name: Any) -> str:
    return PurePosixPath(str(name).strip()).stem.lower()


def _merge_labels(frame: pd.DataFrame, name: str, data: bytes) -> tuple[pd.DataFrame, str]:
    """Add the columns of a labels CSV, matched on file names (or stems)."""
    try:
        labels = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        return frame, f"{name} could not be read as labels: {str(err).splitlines()[0]}"
    labels.columns = [str(c) for c in labels.columns]
    stems = {_stem(f) for f in frame[FILE_COLUMN]}
    key = next(
        (c for c in labels.columns if c.strip().lower() in _LABEL_KEY_COLUMNS),
        None,
    )
    if key is None:  # else the column whose values best match the file names
        rates = {c: labels[c].map(_stem).isin(stems).mean() for c in labels.columns}
        best = max(rates, key=lambda c: rates[c], default=None)
        key = best if best is not None and rates[best] >= 0.5 else None
    if key is None:
        return frame, f"{name}: no column of file names found, so no labels were added."
    labels = labels.drop_duplicates(subset=[key], keep="first")
    extra = [c for c in labels.columns if c != key and c not in frame.columns]
    lookup = labels.assign(_stem=labels[key].map(_stem)).drop_duplicates("_stem")
    lookup = lookup.set_index("_stem")[extra]
    stems_of_rows = frame[FILE_COLUMN].map(_stem)
    merged = (
        frame.assign(_stem=stems_of_rows)
        .merge(lookup, left_on="_stem", right_index=True, how="left")
        .drop(columns=["_stem"])
    )
    matched = int(stems_of_rows.isin(lookup.index).sum())
    note = f"Labels from {name} (matched on `{key}`): {', '.join(f'`{c}`' for c in extra)}"
    note += f" for {matched:,} of {len(frame):,} files."
    return merged.reset_index(drop=True), note


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


def refuse_paths(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Blank single-line cells of a structure column, with the reason as the row's error.

    The library reads a cell that names an existing file, which is right for a local table
    but would let an uploaded table make the server open its own files.
    """
    values = frame[column]
    suspect = [isinstance(v, str) and v.strip() != "" and "\n" not in v.strip() for v in values]
    if not any(suspect):
        return frame
    out = frame.copy()
    errors = list(out[READ_ERROR_COLUMN]) if READ_ERROR_COLUMN in out else [None] * len(out)
    out[column] = [None if bad else v for v, bad in zip(values, suspect, strict=True)]
    out[READ_ERROR_COLUMN] = [
        PATH_REFUSED if bad else err for err, bad in zip(errors, suspect, strict=True)
    ]
    return out


def table_from_frame(
    frame: pd.DataFrame,
    input_col: str | None = None,
    targets: list[str] | None = None,
    input_type: str | None = None,
) -> Any:
    """Validate the inputs (and target columns) of a frame; errors become UploadErrors.

    ``input_type`` None/"auto" lets :func:`matfuse.inputs.load_input_table` detect the kind
    (molecules, compositions or structures) from the column names and content.
    """
    from matfuse.inputs import detect_input_kind, load_input_table

    kind = chosen_kind(input_type)
    try:
        kind, col = detect_input_kind(frame, kind, input_col or None)
        if kind_view(kind).reads_files:
            frame = refuse_paths(frame, col)
        table = load_input_table(frame, input_type=kind, input_col=col, targets=targets or [])
    except (KeyError, ValueError, TypeError) as err:
        message = err.args[0] if err.args else str(err)
        text = str(message).replace("(name it explicitly)", "(choose the input column and kind)")
        raise UploadError(text) from None
    kind = table_kind(table)
    if table.parsed.n_invalid == len(table):
        first = next((e for e in table.errors if e), "")
        what = kind_view(kind).input_what
        raise UploadError(
            f"No row of column {input_column(table)!r} holds a usable {noun(kind, 1)} (first "
            f"problem: {first}). Choose the column that holds {what}, or another input kind."
        )
    return table


def validation_message(table: Any) -> str:
    """Markdown summary of what is usable and what is not, with the main reasons."""
    kind = table_kind(table)
    summary = table.summary()
    n, bad = int(summary["rows"]), int(summary["invalid"])
    what = kind_view(kind).column_label
    lines = [f"**{n:,} rows** of {noun(kind)}, {what} column `{input_column(table)}`."]
    if bad:
        share = bad / n
        reasons = summary["invalid_reasons"]
        assert isinstance(reasons, dict)
        top = ", ".join(f"{k} ({v})" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        icon = "**Warning:**" if share >= WARN_INVALID_FRACTION else "Note:"
        lines.append(
            f"{icon} {bad:,} of {n:,} rows ({share:.0%}) have a {noun(kind, 1)} that cannot be "
            f"used and will be skipped: {top}. They are listed under *Rows with problems*."
        )
        if share >= WARN_INVALID_FRACTION:
            lines.append(
                f"That is a large share: check that the right {what} column and input kind "
                "are selected."
            )
    else:
        lines.append(f"Every row holds a valid {noun(kind, 1)}.")
    dups = int(next((v for k, v in summary.items() if str(k).startswith("duplicate")), 0))
    if dups:
        lines.append(f"Note: {dups} {noun(kind)} occur on more than one row.")
    return "\n\n".join(lines)
