"""The one table writer: the format follows the file name, the same rule in every command.

``.csv``, ``.tsv``, ``.parquet`` (or ``.pq``), each optionally compressed as ``.gz`` (text
formats). Writes go to a temporary file in the target directory that is renamed into place
only when complete, so a killed run never leaves a truncated table that looks finished.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "TABLE_SUFFIXES",
    "UnsupportedFormatError",
    "atomic_path",
    "table_format",
    "write_table",
    "write_text",
]

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".csv.gz", ".tsv.gz")


class UnsupportedFormatError(ValueError):
    """An output file name whose suffix names no table format we write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"cannot tell the table format of {path.name!r}: end the name with "
            + ", ".join(TABLE_SUFFIXES)
        )


def _read_umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: once, at import, then restored
    os.umask(mask)
    return mask


#: the process umask at import: the mode a finished result gets is ``0o666 & ~UMASK``
UMASK = _read_umask()


def table_format(path: str | Path) -> str:
    """``csv``, ``tsv`` or ``parquet`` from a file name (``UnsupportedFormatError`` otherwise)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and suffixes[-1] in (".csv", ".tsv"):
            return suffixes[-1][1:]
        raise UnsupportedFormatError(path)
    ext = suffixes[-1] if suffixes else ""
    if ext in (".csv", ".tsv"):
        return ext[1:]
    if ext in (".parquet", ".pq"):
        return "parquet"
    raise UnsupportedFormatError(path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); a result gets the mode any new file would
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically (reports, summaries, JSON results)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` in the format its name says, atomically."""
    path = Path(path)
    fmt = table_format(path)
    compression = "gzip" if path.suffix.lower() == ".gz" else None
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            sep = "\t" if fmt == "tsv" else ","
            frame.to_csv(tmp, index=False, sep=sep, compression=compression)
    logger.info("wrote %d rows to %s", len(frame), path)
    return path
