"""Predict a table of any length chunk by chunk: memory follows the chunk, not the file.

Three small parts, so that another engine (a Dask screen) can reuse the middle one:

* :func:`~matfuse.inputs.readers.iter_table` reads the input in chunks of a fixed number
  of rows;
* :func:`predict_frames` turns an iterator of input chunks into an iterator of predicted
  frames: the input columns are detected (and a header-less file refused) on the first
  chunk, then every chunk is parsed, encoded and predicted on its own;
* :func:`append_table` writes frames one after another into one table, atomically.

:func:`predict_stream` joins them. The output is what predicting the whole table at once
gives: every input row in order, the user's columns first and untouched, then the model's
(key, ``pred_``/``std_``/``lower_``/``upper_`` columns, ``error`` last). One difference
by design: the uncertainty columns are those the model can give (one header for every
chunk), so a table where no row is valid still has them, empty.

>>> counts = predict_stream("model/", "big.csv", "pred.csv", batch_size=10_000)  # doctest: +SKIP
>>> counts.rows, counts.invalid  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

from matfuse.inputs.kinds import detect_columns
from matfuse.inputs.readers import DEFAULT_CHUNK_ROWS, READ_ERROR_COLUMN, iter_table
from matfuse.inputs.table import load_input_table, refuse_headerless
from matfuse.inputs.writers import atomic_path, table_format

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from matfuse.pipeline import PropertyModel

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "InputTableError",
    "StreamCounts",
    "append_table",
    "input_columns",
    "predict_chunk",
    "predict_frames",
    "predict_stream",
]

#: Rows parsed, encoded and predicted at a time by :func:`predict_stream`.
DEFAULT_BATCH_ROWS = DEFAULT_CHUNK_ROWS


class InputTableError(ValueError):
    """The input table cannot be read, or has no usable input column: a user error."""


@dataclass(frozen=True)
class StreamCounts:
    """What :func:`predict_stream` wrote: rows, rows with an ``error``, chunks."""

    rows: int
    invalid: int
    chunks: int


def input_columns(
    model: PropertyModel,
    frame: pd.DataFrame,
    input_col: str | Sequence[str] | None = None,
    *,
    from_file: bool = False,
) -> dict[str, str]:
    """The input column(s) of ``frame`` for ``model`` (column → kind), as ``load_input_table``.

    ``from_file``: the frame is the start of a file, so a first line that reads as data is
    refused (:class:`~matfuse.inputs.table.HeaderlessTableError`) instead of being lost.
    """
    cols = [input_col] if isinstance(input_col, str) else list(input_col or [])
    columns = detect_columns(frame, model.input_type, cols or None)
    refuse_headerless(frame, columns, from_file=from_file)
    return columns


def predict_chunk(
    model: PropertyModel, chunk: pd.DataFrame, columns: dict[str, str]
) -> pd.DataFrame:
    """One chunk's rows, the user's columns untouched, then the model's (``error`` last).

    ``columns`` is :func:`input_columns` of the first chunk, so that every chunk reads the
    same columns as the same kinds. A column of ours named like one of the user's gets a
    ``_matfuse`` suffix instead of replacing it.
    """
    table = load_input_table(
        chunk,
        input_type="+".join(columns.values()),
        input_col=list(columns),
        standardize=model.standardize,
    )
    preds = model.predict_table(table.parsed, all_columns=True)
    frame = table.frame.drop(columns=[READ_ERROR_COLUMN], errors="ignore")
    ours = preds.drop(columns=["input"])
    ours = ours.rename(columns={c: f"{c}_matfuse" for c in ours.columns if c in frame.columns})
    return pd.concat([frame, ours], axis=1)


def predict_frames(
    model: PropertyModel,
    chunks: Iterable[pd.DataFrame],
    *,
    input_col: str | Sequence[str] | None = None,
    from_file: bool = False,
) -> Iterator[pd.DataFrame]:
    """Input chunks → predicted frames (:func:`predict_chunk`), columns found on the first.

    A chunk that cannot be read, or a first chunk without a usable input column, raises
    :class:`InputTableError`; bad inputs only flag their own rows.
    """
    it = iter(chunks)
    first = _next_chunk(it)
    if first is None:
        raise InputTableError("the input holds no table")
    try:
        columns = input_columns(model, first, input_col, from_file=from_file)
    except (ValueError, KeyError) as err:
        raise InputTableError(_message(err)) from err
    chunk: pd.DataFrame | None = first
    while chunk is not None:
        yield predict_chunk(model, chunk, columns)
        chunk = _next_chunk(it)


def _next_chunk(it: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """The next chunk, ``None`` at the end; a reader's failure as :class:`InputTableError`."""
    try:
        return next(it)
    except StopIteration:
        return None
    except (ValueError, KeyError, OSError) as err:  # pandas' ParserError, bad UTF-8, ArrowInvalid
        raise InputTableError(_message(err)) from err


def _message(err: BaseException) -> str:
    text = str(err.args[0]) if type(err) is KeyError and err.args else str(err)
    return " ".join(text.split())


@contextmanager
def append_table(path: str | Path) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Append frames, one after another, to the table ``path`` in the format its name says.

    The first frame gives the header (CSV, TSV, gzipped or not) or the schema (parquet: one
    row group per frame). Written to a temporary file renamed onto ``path`` when the block
    ends without error, so an interrupted run leaves the previous file (or none). Append at
    least one frame (it may be empty) for a file with a header.
    """
    path = Path(path)
    fmt = table_format(path)
    with atomic_path(path) as tmp, ExitStack() as stack:
        if fmt == "parquet":
            parquet = _ParquetAppender(tmp)
            stack.callback(parquet.close)
            yield parquet.append
        else:
            text = _CsvAppender(tmp, "\t" if fmt == "tsv" else ",", path.suffix.lower() == ".gz")
            stack.callback(text.close)
            yield text.append


class _CsvAppender:
    """CSV/TSV rows written as pandas writes the whole frame (header once, no index)."""

    def __init__(self, path: Path, sep: str, compressed: bool) -> None:
        self.sep = sep
        self.handle: IO[str] = (
            gzip.open(path, "wt", encoding="utf-8", newline="")
            if compressed
            else open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close)
        )
        self.header = True

    def append(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.handle, index=False, sep=self.sep, header=self.header)
        self.header = False

    def close(self) -> None:
        self.handle.close()


class _ParquetAppender:
    """One row group per frame; the schema is the first frame's, empty columns as text."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

    def append(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.schema is None:
            first = pa.Table.from_pandas(frame, preserve_index=False)
            # a column with no value in the first frame (no error yet) has no type: text
            fields = [
                f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in first.schema
            ]
            self.schema = pa.schema(fields, metadata=first.schema.metadata)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        assert self.writer is not None
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def predict_stream(
    model: PropertyModel | str | Path,
    input_path: str | Path,
    out_path: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
    input_col: str | Sequence[str] | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> StreamCounts:
    """Predict every row of ``input_path`` into ``out_path``, ``batch_size`` rows at a time.

    ``model`` is a :class:`~matfuse.pipeline.PropertyModel` or its directory. Peak memory is
    that of one batch, whatever the number of rows. ``on_progress(rows_done)`` is called
    after each batch is written. Raises :class:`InputTableError` for an input that cannot
    be read (nothing is written then); invalid rows are counted, not raised.
    """
    from matfuse.pipeline import PropertyModel

    if batch_size < 1:
        raise ValueError(f"batch size must be at least one row, not {batch_size}")
    table_format(out_path)  # an output name we cannot write fails before any work
    pm = model if isinstance(model, PropertyModel) else PropertyModel.load(model)
    chunks = iter_table(input_path, chunk_rows=batch_size)
    rows = invalid = n_chunks = 0
    with append_table(out_path) as append:
        for frame in predict_frames(pm, chunks, input_col=input_col, from_file=True):
            append(frame)
            rows += len(frame)
            invalid += int(frame.iloc[:, -1].notna().sum())  # ``error`` is always last
            n_chunks += 1
            if on_progress is not None:
                on_progress(rows)
    return StreamCounts(rows=rows, invalid=invalid, chunks=n_chunks)
