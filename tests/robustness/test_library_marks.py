"""Seek marks in screening libraries (issue 18): a worker jumps to its rows.

Before the marks, the worker of partition k parsed the k partitions before it, so a whole
screen of a text library cost rows squared (the MOSES training set: ~600 partitions, each
re-reading on average 790,000 rows). The marks must change nothing in what is read: every
slice read from a mark equals the same slice read from the start of the file, for every
text format and for the awkward bytes a library may hold.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matfuse.workflow import library
from matfuse.workflow.library import read_rows, scan_file

EVERY = 7  # marks every 7 records, so small files hold many


@pytest.fixture(autouse=True)
def _small_marks(monkeypatch):
    monkeypatch.setattr(library, "_MARK_EVERY", EVERY)


def _slice(whole: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    """Rows ``[start, stop)`` of a full read as a read of that slice gives them: the error
    column only where one of its rows has an error."""
    part = whole.iloc[start:stop].reset_index(drop=True)
    error = library.READ_ERROR_COLUMN
    if error in part and part[error].isna().all():
        part = part.drop(columns=error)
    return part


def _same_slices(path: Path, width: int = 5) -> None:
    """Every slice, read from its mark, equals the slice of a read from the first row."""
    info = scan_file(path)
    assert info.rows > 3 * EVERY
    assert [m[0] for m in info.marks] == list(range(0, info.rows, EVERY))
    plain = replace(info, marks=())
    whole = read_rows(plain, 0, info.rows)
    assert len(whole) == info.rows
    for start in range(0, info.rows, width):
        stop = min(start + width, info.rows)
        worker = info.for_rows(start)
        assert len(worker.marks) == 1 and worker.marks[0][0] <= start
        got = read_rows(worker, start, stop)
        pd.testing.assert_frame_equal(got, _slice(whole, start, stop))


def _awkward_csv_rows(n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        name = f"m{i}"
        if i % 5 == 1:
            name = f'multi\nline "quoted", {i}'  # a record over two lines
        if i % 11 == 3:
            name = f"caf\u00e9 \u4e2d {i}"  # multibyte UTF-8
        rows.append([["CCO", "c1ccccc1", "C1CC1", "not a smiles"][i % 4], name, str(i)])
    return rows


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("compressed", [False, True])
def test_csv_slices_from_marks_equal_a_full_read(tmp_path, newline, compressed):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(["smiles", "name", "n"])
    for i, row in enumerate(_awkward_csv_rows(60)):
        writer.writerow(row)
        if i % 13 == 0:
            buffer.write(newline)  # blank lines are no rows
        if i == 40:
            buffer.write("CCO,x,1,too,many" + newline)  # a flagged row keeps its number
    data = buffer.getvalue().encode() + b"\xff\xfe broken bytes,y,2" + newline.encode()
    path = tmp_path / ("lib.csv.gz" if compressed else "lib.csv")
    path.write_bytes(gzip.compress(data) if compressed else data)
    _same_slices(path)
    errors = read_rows(scan_file(path).for_rows(40), 40, 45)[library.READ_ERROR_COLUMN]
    assert errors.notna().sum() == 1 and "row 42 has 5 fields" in errors.dropna().iloc[0]


def test_smi_tsv_and_sdf_slices_from_marks_equal_a_full_read(tmp_path):
    smiles = ["CCO", "c1ccccc1", "C1CC1", "CC(=O)O", "CCN"] * 8
    smi = tmp_path / "lib.smi"
    lines = ["smiles name", "# a comment"]
    lines += [f"{s} mol{i}" if i % 3 else s for i, s in enumerate(smiles)]
    smi.write_text("\n".join(lines[:10] + [""] + lines[10:]) + "\n")
    _same_slices(smi)

    tsv = tmp_path / "lib.tsv"
    tsv.write_text("smiles\tv\n" + "".join(f"{s}\t{i}\n" for i, s in enumerate(smiles)))
    _same_slices(tsv)

    from rdkit import Chem

    sdf = tmp_path / "lib.sdf"
    with Chem.SDWriter(str(sdf)) as writer:
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            mol.SetProp("_Name", f"mol{i}")
            mol.SetProp("value", str(i))
            writer.write(mol)
    _same_slices(sdf, width=4)


def test_a_cut_gzip_breaks_at_the_same_row_when_read_from_a_mark(tmp_path):
    text = "smiles,n\n" + "".join(f"CCO,{i}\n" for i in range(5000))
    path = tmp_path / "cut.csv.gz"
    packed = gzip.compress(text.encode(), compresslevel=1)
    path.write_bytes(packed[: len(packed) * 3 // 4])
    info = scan_file(path)
    assert info.error is not None and 3 * EVERY < info.rows < 5000
    last = read_rows(info.for_rows(info.rows - 3), info.rows - 3, info.rows)
    whole = read_rows(replace(info, marks=()), 0, info.rows)
    pd.testing.assert_frame_equal(last, _slice(whole, info.rows - 3, info.rows))
    assert last["n"].tolist() == list(range(info.rows - 3, info.rows))


def test_a_worker_reads_only_from_its_mark(tmp_path, monkeypatch):
    """The last rows of a big file are read without decoding the lines before them."""
    path = tmp_path / "big.csv"
    path.write_text("smiles,n\n" + "".join(f"CCO,{i}\n" for i in range(2000)))
    info = scan_file(path)
    decoded = 0
    next_line = library._Lines.__next__

    def counting(self):
        nonlocal decoded
        decoded += 1
        return next_line(self)

    monkeypatch.setattr(library._Lines, "__next__", counting)
    frame = read_rows(info.for_rows(1995), 1995, 2000)
    assert frame["n"].tolist() == [1995, 1996, 1997, 1998, 1999]
    assert decoded <= 1 + EVERY + 5 + 1  # the header, at most one mark's gap, the rows


cell = st.text(
    alphabet=st.sampled_from(list('abC1(=)O,"\n\r\t ;') + ["\u00e9", "\u4e2d"]), max_size=12
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(cell, cell), min_size=3 * EVERY + 1, max_size=60))
def test_fuzzed_csv_slices_from_marks_equal_a_full_read(tmp_path, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["smiles", "name"])
    writer.writerows(["x" + a, b] for a, b in rows)  # never a blank record
    path = tmp_path / "fuzz.csv"
    path.write_bytes(buffer.getvalue().encode())
    info = scan_file(path)
    plain = read_rows(replace(info, marks=()), 0, info.rows)
    for start in range(0, info.rows, 4):
        stop = min(start + 4, info.rows)
        pd.testing.assert_frame_equal(
            read_rows(info.for_rows(start), start, stop),
            _slice(plain, start, stop),
        )
