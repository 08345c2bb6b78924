"""A screening library, file by file, as records a driver counts and workers slice.

``matfuse screen`` cuts every library file into partitions of a fixed number of rows and
lets each worker read its own slice from the file. Driver and workers must agree on what a
row is and on each column's dtype, whatever bytes the file holds, so both read through the
same record reader here:

* :func:`scan_file` (driver, one pass) counts the rows, lists the columns and decides one
  dtype per column for the whole file (integers with a gap anywhere become floats, mixed
  values text), and keeps the first rows for input-column detection;
* :func:`read_rows` (worker) reads rows ``[start, stop)`` and casts them to those dtypes;
  input columns are always text.

Nothing here raises on bad rows: a line with too many fields, bytes that are not UTF-8
(replaced, so the row fails to parse as an input), a field too large, or an SDF record
RDKit cannot read becomes a row with a ``_read_error``. A compressed stream that ends early
(a truncated gzip member) is read up to the break, its last, cut record flagged, and the
file's ``error`` says why the rest is missing. Only a file that cannot be read at all (no
header, not a parquet file) raises :class:`LibraryFileError`.

CSV/TSV (gzip, bz2 or xz compressed or not), SMILES (``.smi``), SDF, parquet, and
directories of structure files (CIF, POSCAR; one row per file) are read.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from matfuse.inputs.readers import READ_ERROR_COLUMN, table_ext

__all__ = [
    "STRUCTURE_SUFFIXES",
    "LibraryFile",
    "LibraryFileError",
    "is_structure_file",
    "read_rows",
    "scan_file",
]

#: Files a directory library reads as one crystal structure each.
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")
#: Cells pandas reads as missing; the same here (input columns keep all but the empty one).
_MISSING = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "-NaN", "null", "NULL"})
_MISSING |= frozenset({"None", "#N/A", "<NA>", "#NA"})
_BOOLS = {"True": True, "true": True, "TRUE": True, "False": False, "false": False}
_BOOLS |= {"FALSE": False}
_INT = re.compile(r"\s*[+-]?\d+\s*")
#: A CIF in a table cell is a few kB; anything larger than this is garbage, flagged.
_FIELD_LIMIT = 16 * 1024 * 1024
_SCAN_HEAD = 1000  # rows kept by the scan for input-column detection
#: The scan notes where every this-many-th record starts, so a worker reading rows
#: ``[start, stop)`` jumps there instead of parsing the file from its first row.
_MARK_EVERY = 1000
_CHUNK = 8192  # bytes read at a time (a stream cut short is read up to its last chunk)


class LibraryFileError(ValueError):
    """A library file that cannot be read at all (the reason is the message)."""


@dataclass(frozen=True)
class LibraryFile:
    """What the driver learnt about one library file; everything a worker needs to slice it.

    ``error`` says why rows after ``rows`` could not be read (``None``: read to the end).
    ``marks`` are ``(row, byte)`` pairs: record ``row`` starts at offset ``byte`` of the
    (decompressed) text. Without them a worker reading the last partition of a big file
    would parse every row before it: a whole screen would cost rows squared.
    """

    path: str
    fmt: str
    rows: int
    columns: tuple[str, ...]
    dtypes: tuple[tuple[str, str], ...]
    error: str | None = None
    head: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    marks: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)

    def with_text(self, columns: Sequence[str]) -> LibraryFile:
        """The same file with ``columns`` (the input columns) read as text."""
        dtypes = tuple((c, "str" if c in columns else d) for c, d in self.dtypes)
        return replace(self, dtypes=dtypes, head=None)

    def for_rows(self, start: int) -> LibraryFile:
        """What a worker needs to read rows from ``start``: only the mark at or before it
        (a partition sent to a worker then carries one pair, not the file's whole index)."""
        before = [m for m in self.marks if m[0] <= start]
        return replace(self, head=None, marks=tuple(before[-1:]))


def is_structure_file(path: Path) -> bool:
    name = path.name.upper()
    return path.suffix.lower() in STRUCTURE_SUFFIXES or name.startswith(("POSCAR", "CONTCAR"))


def _format(path: Path) -> str:
    if path.is_dir():
        return "structures"
    ext = table_ext(path)
    if ext in (".csv",):
        return "csv"
    if ext in (".tsv", ".tab"):
        return "tsv"
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".sdf", ".sd"):
        return "sdf"
    return "smi"


# -- bytes that may end early ------------------------------------------------------------
class _SafeBytes(io.RawIOBase):
    """A (decompressing) byte stream that ends, instead of raising, where it breaks."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.error: str | None = None
        self.ends_line = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            return 0
        try:
            data = self.handle.read(len(buffer))
        except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as err:
            self.error = f"the file cannot be read past this point ({' '.join(str(err).split())})"
            return 0
        n = len(data)
        buffer[:n] = data
        if n:
            self.ends_line = data.endswith(b"\n")
        return n

    def close(self) -> None:
        self.handle.close()
        super().close()


def _open_bytes(path: Path) -> IO[bytes]:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")  # noqa: SIM115 (closed by _SafeBytes.close)


class _Lines:
    """The lines of a byte stream as text (bad UTF-8 replaced), counting the bytes taken.

    ``position`` is where the next line starts in the (decompressed) stream: a record
    reader asks for it before each record, which is how the scan marks record starts. A
    line ends at LF, CR LF or CR, as text read with ``newline=""``.
    """

    def __init__(self, raw: _SafeBytes) -> None:
        self.raw = raw
        self.position = 0
        self._lines: list[bytes] = []
        self._next = 0
        self._tail = b""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        while self._next >= len(self._lines):
            if not self._fill():
                raise StopIteration
        line = self._lines[self._next]
        self._next += 1
        self.position += len(line)
        return line.decode("utf-8", "replace")

    def _fill(self) -> bool:
        """Split the next chunk into lines; False at the end of the stream."""
        chunk = self.raw.read(_CHUNK) if not self.raw.closed else b""
        data = self._tail + (chunk or b"")
        if not data:
            return False
        lines = data.splitlines(keepends=True)
        # Unless the stream has ended, the last piece may continue in the next chunk
        # (no line end yet, or a CR whose LF has not been read).
        self._tail = lines.pop() if chunk and not lines[-1].endswith(b"\n") else b""
        self._lines, self._next = lines, 0
        return True

    def seek(self, position: int) -> None:
        """Continue at byte ``position`` of the stream (a record start the scan marked).

        Reads stay aligned to ``_CHUNK`` from the start, as in the scan: a compressed
        stream cut short loses the whole read that meets the break, so a reader starting
        elsewhere would otherwise see the break at another row than the scan did.
        """
        base = position - position % _CHUNK
        self.raw.handle.seek(base)
        self._lines, self._next = [], 0
        self._tail = (self.raw.read(_CHUNK) or b"")[position - base :]
        self.position = position


class _Text:
    """A library file as text lines, knowing whether it ended early and where records start.

    The record readers call :meth:`note` once per record, before reading it: that counts
    the records (``count``, for row numbers in messages) and, in a scan, marks every
    ``_MARK_EVERY``-th record's start.
    """

    def __init__(self, path: Path, marks: list[tuple[int, int]] | None = None) -> None:
        self.raw = _SafeBytes(_open_bytes(path))
        self.lines = _Lines(self.raw)
        self.count = 0
        self.marks = marks

    def __enter__(self) -> _Text:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()

    def note(self, start: int) -> None:
        if self.marks is not None and self.count % _MARK_EVERY == 0:
            self.marks.append((self.count, start))
        self.count += 1

    def seek(self, mark: tuple[int, int]) -> None:
        """Go to a marked record: the next record read is record ``mark[0]``."""
        self.lines.seek(mark[1])
        self.count = mark[0]

    @property
    def cut(self) -> bool:
        """The stream broke in the middle of a line: its last record is incomplete."""
        return self.raw.error is not None and not self.raw.ends_line


# -- records -----------------------------------------------------------------------------
Record = tuple[list[str | None], str | None]  # fields (one per column), read error


def _cells(values: Sequence[str], n: int, row: int) -> Record:
    if len(values) > n:
        return [None] * n, f"row {row} has {len(values)} fields, the header {n}"
    cells: list[str | None] = [v if v != "" else None for v in values]
    return cells + [None] * (n - len(cells)), None


def _delimited(stream: _Text, sep: str) -> tuple[list[str], Iterator[Record]]:
    csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(stream.lines, delimiter=sep)
    header: list[str] | None = None
    while header is None:
        try:
            first = next(reader)
        except StopIteration:
            reason = stream.raw.error or "the file is empty (no header line)"
            raise LibraryFileError(reason) from None
        except csv.Error as err:
            raise LibraryFileError(f"the header line cannot be read: {err}") from None
        header = first or None
    names = [h.strip() for h in header]
    if stream.raw.error is not None:
        raise LibraryFileError(stream.raw.error)

    def records() -> Iterator[Record]:
        while True:
            start = stream.lines.position
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                stream.note(start)
                yield [None] * len(names), f"row {stream.count} cannot be read: {err}"
                continue
            if not values:
                continue  # a blank line is no row (as pandas reads it)
            stream.note(start)
            yield _cells(values, len(names), stream.count)

    return names, records()


def _smi(stream: _Text) -> tuple[list[str], Iterator[Record]]:
    def records() -> Iterator[Record]:
        while True:
            start = stream.lines.position
            line = next(stream.lines, None)
            if line is None:
                return
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if parts[0].lower() == "smiles":  # a header line
                continue
            stream.note(start)
            yield [parts[0], parts[1] if len(parts) > 1 else None], None

    return ["smiles", "name"], records()


_SD_PROPERTY = re.compile(r"^>.*<([^>]+)>")


def _sd_blocks(stream: _Text) -> Iterator[tuple[int, str]]:
    """The SD records as text, each with the byte where it starts."""
    lines: list[str] = []
    start = stream.lines.position
    for line in stream.lines:
        if line.rstrip("\r\n") == "$$$$":
            yield start, "".join(lines)
            lines = []
            start = stream.lines.position
        else:
            lines.append(line)
    if any(ln.strip() for ln in lines):
        yield start, "".join(lines)


def _sd_properties(block: str) -> dict[str, str]:
    """``> <NAME>`` data items of an SD record, as text (RDKit parses only the mol block)."""
    props: dict[str, str] = {}
    lines = block.splitlines()
    i = lines.index("M  END") + 1 if "M  END" in lines else len(lines)
    while i < len(lines):
        match = _SD_PROPERTY.match(lines[i])
        i += 1
        if match is None:
            continue
        values: list[str] = []
        while i < len(lines) and lines[i].strip():
            values.append(lines[i])
            i += 1
        props[match.group(1)] = "\n".join(values)
    return props


def _sdf_records(stream: _Text, names: Sequence[str]) -> Iterator[Record]:
    """Rows of an SDF: its properties (``names``), ``name``, then the mol block as text."""
    for start, block in _sd_blocks(stream):
        stream.note(start)
        props = _sd_properties(block)
        title = block.split("\n", 1)[0].strip()
        cells = [props.get(n) or None for n in names]
        yield [*cells, title or None, block], None


def _structure_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and is_structure_file(p))


# -- dtypes ------------------------------------------------------------------------------
class _Kinds:
    """Per column, the kinds of value seen (int, float, bool, text) and whether gaps."""

    def __init__(self, n: int) -> None:
        self.kinds: list[set[str]] = [set() for _ in range(n)]
        self.gaps = [False] * n

    def add(self, value: str | None, column: int) -> None:
        if value is None or value in _MISSING:
            self.gaps[column] = True
            return
        kinds = self.kinds[column]
        if "str" in kinds:
            return
        if value in _BOOLS:
            kinds.add("bool")
        elif _INT.fullmatch(value):
            kinds.add("int")
        else:
            try:
                float(value)
            except ValueError:
                kinds.add("str")
            else:
                kinds.add("float")

    def dtype(self, column: int) -> str:
        kinds, gap = self.kinds[column], self.gaps[column]
        if not kinds:
            return "float64"  # an empty column, as pandas reads it
        if kinds == {"int"}:
            return "float64" if gap else "Int64"
        if kinds <= {"int", "float"}:
            return "float64"
        if kinds == {"bool"} and not gap:
            return "boolean"
        return "str"


def _cast(values: list[str | None], dtype: str) -> pd.Series:
    if dtype == "str":
        return pd.Series(values, dtype="str")
    cells = [None if v is None or v in _MISSING else v for v in values]
    if dtype == "boolean":
        return pd.Series([None if v is None else _BOOLS.get(v) for v in cells], dtype="boolean")
    numbers = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce")
    return numbers.astype("Int64" if dtype == "Int64" else "float64")


def _frame(records: list[Record], columns: Sequence[str], dtypes: dict[str, str]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for j, name in enumerate(columns):
        data[name] = _cast([r[0][j] for r in records], dtypes[name])
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(records)))
    errors = [r[1] for r in records]
    if any(e is not None for e in errors):
        frame[READ_ERROR_COLUMN] = pd.Series(errors, dtype="str")
    return frame


# -- the two entry points ----------------------------------------------------------------
def scan_file(path: str | Path) -> LibraryFile:
    """Count a file's rows and decide its columns' dtypes in one pass (the driver's job)."""
    path = Path(path)
    fmt = _format(path)
    if fmt == "parquet":
        return _scan_parquet(path)
    if fmt == "structures":
        files = _structure_files(path)
        if not files:
            raise LibraryFileError("the directory holds no structure file (.cif, POSCAR)")
        layout = (("name", "str"), ("structure", "str"))
        first = read_rows(
            LibraryFile(str(path), fmt, len(files), ("name", "structure"), layout), 0, 20
        )
        return LibraryFile(str(path), fmt, len(files), ("name", "structure"), layout, head=first)
    marks: list[tuple[int, int]] = []
    with _Text(path, marks) as stream:
        names, records = _records(stream, fmt, path)
        records = _with_cut(records, stream)
        kinds = _Kinds(len(names))
        head: list[Record] = []
        rows = 0
        for record in records:
            rows += 1
            if len(head) < _SCAN_HEAD:
                head.append(record)
            for j, value in enumerate(record[0]):
                if fmt != "sdf" or j < len(names) - 2:  # SDF name and mol block: text
                    kinds.add(value, j)
        dtypes = {n: kinds.dtype(j) for j, n in enumerate(names)}
        if fmt == "sdf":
            dtypes.update({"name": "str", "molblock": "str"})
        error = stream.raw.error
        if rows == 0 and error is not None:
            raise LibraryFileError(error)
    head_frame = _finish(_frame(head, names, dtypes), fmt)
    return LibraryFile(
        str(path),
        fmt,
        rows,
        tuple(names),
        tuple(dtypes.items()),
        error,
        head=head_frame,
        marks=tuple(m for m in marks if m[0] < rows),
    )


def _records(
    stream: _Text, fmt: str, path: Path, columns: Sequence[str] | None = None
) -> tuple[list[str], Iterator[Record]]:
    """The column names and records of a text file (an SDF's: ``columns`` when known)."""
    if fmt in ("csv", "tsv"):
        return _delimited(stream, "," if fmt == "csv" else "\t")
    if fmt == "smi":
        return _smi(stream)
    if columns is not None:
        props = list(columns[:-2])
        return [*props, "name", "molblock"], _sdf_records(stream, props)
    with _Text(path) as first:  # SDF columns: every record's property names, in order
        names: dict[str, None] = {}
        for _, block in _sd_blocks(first):
            names.update(dict.fromkeys(_sd_properties(block)))
    props = [n for n in names if n not in ("name", "smiles", "molblock")]
    return [*props, "name", "molblock"], _sdf_records(stream, props)


def _with_cut(records: Iterator[Record], stream: _Text) -> Iterator[Record]:
    """The records, the last one flagged when the stream broke in its middle."""
    previous: Record | None = None
    for record in records:
        if previous is not None:
            yield previous
        previous = record
    if previous is not None:
        if stream.cut and previous[1] is None:
            cells, _ = previous
            yield [None] * len(cells), "the last row was cut off where the file breaks"
        else:
            yield previous


def read_rows(file: LibraryFile, start: int, stop: int) -> pd.DataFrame:
    """Rows ``[start, stop)`` of a scanned file, with the scan's dtypes (a worker's job)."""
    path = Path(file.path)
    dtypes = dict(file.dtypes)
    if file.fmt == "parquet":
        return _read_parquet(path, start, stop, dtypes)
    if file.fmt == "structures":
        files = _structure_files(path)[start:stop]
        return pd.DataFrame(
            {
                "name": pd.Series([p.name for p in files], dtype="str"),
                "structure": pd.Series([_read_structure(p) for p in files], dtype="str"),
            }
        )
    picked: list[Record] = []
    mark = max((m for m in file.marks if m[0] <= start), default=(0, 0))
    with _Text(path) as stream:
        _, records = _records(stream, file.fmt, path, file.columns)
        if mark[0] > 0:
            stream.seek(mark)  # after the header, which _records has read
        for i, record in enumerate(_with_cut(records, stream), start=mark[0]):
            if i >= stop:
                break
            if i >= start:
                picked.append(record)
    names = list(file.columns)  # the driver's (an SDF's properties across the whole file)
    return _finish(_frame(picked, names, dtypes), file.fmt)


def _finish(frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """An SDF's mol blocks become SMILES (an unreadable record: flagged, as read_sdf does)."""
    if fmt != "sdf":
        return frame
    from rdkit import Chem

    from matfuse.chem.standardize import quiet_rdkit

    smiles: list[str | None] = []
    errors = list(frame.get(READ_ERROR_COLUMN, pd.Series([None] * len(frame))))
    with quiet_rdkit():
        for i, block in enumerate(frame.pop("molblock")):
            mol = Chem.MolFromMolBlock(block) if isinstance(block, str) else None
            smiles.append(Chem.MolToSmiles(mol) if mol is not None else None)
            if mol is None and not isinstance(errors[i], str):
                errors[i] = "unreadable SDF record"
    frame["smiles"] = pd.Series(smiles, dtype="str")
    if any(isinstance(e, str) for e in errors):
        frame[READ_ERROR_COLUMN] = pd.Series(errors, dtype="str")
    return frame


def _read_structure(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _scan_parquet(path: Path) -> LibraryFile:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        head = next(handle.iter_batches(batch_size=_SCAN_HEAD), None)
    except (OSError, ValueError) as err:  # ArrowInvalid is a ValueError
        raise LibraryFileError(f"not a readable parquet file ({err})") from None
    schema = handle.schema_arrow
    frame = head.to_pandas() if head is not None else schema.empty_table().to_pandas()
    dtypes = tuple((str(n), "parquet") for n in schema.names)
    return LibraryFile(
        str(path), "parquet", handle.metadata.num_rows, tuple(schema.names), dtypes, head=frame
    )


def _read_parquet(path: Path, start: int, stop: int, dtypes: dict[str, str]) -> pd.DataFrame:
    """Rows of a parquet file, reading only the row groups that hold them.

    Integers and booleans come as pandas' nullable dtypes in every partition (a numpy
    dtype would depend on whether that partition has a gap); text input columns as text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    groups: list[int] = []
    first = offset = 0
    for g in range(handle.num_row_groups):
        n = handle.metadata.row_group(g).num_rows
        if offset < stop and offset + n > start:
            if not groups:
                first = offset
            groups.append(g)
        offset += n
    table = handle.read_row_groups(groups) if groups else handle.schema_arrow.empty_table()
    table = table.slice(start - first, stop - start) if groups else table
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame = table.to_pandas(types_mapper=nullable.get)
    for name, dtype in dtypes.items():
        if dtype == "str" and name in frame:
            frame[name] = pd.Series(
                [None if _missing(v) else str(v) for v in frame[name]], dtype="str"
            )
    return frame.reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
