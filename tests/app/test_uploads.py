"""Upload validation: bad files give clear messages and never crash the server."""

from __future__ import annotations

import pandas as pd
import pytest

from matfuse.app.uploads import (
    MAX_UPLOAD_BYTES,
    UploadError,
    check_upload,
    provided_split_labels,
    read_upload,
    table_from_frame,
    validation_message,
)


def test_rejects_types_that_could_be_executed_or_unpickled(tmp_path):
    for name in ("model.pkl", "data.joblib", "script.py", "noext"):
        path = tmp_path / name
        path.write_bytes(b"not read")
        with pytest.raises(UploadError, match="not accepted.*\\.csv, \\.tsv, \\.sdf"):
            check_upload(path)


def test_fifty_megabyte_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as handle:  # sparse: no 50 MB actually written
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(UploadError) as err:
        read_upload(path)
    message = str(err.value)
    assert "50.0 MB" in message and "20.0 MB" in message
    assert path.stat().st_size > MAX_UPLOAD_BYTES


def test_empty_and_missing_uploads(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UploadError, match="empty"):
        check_upload(empty)
    with pytest.raises(UploadError, match="No file"):
        check_upload(None)
    with pytest.raises(UploadError, match="did not arrive"):
        check_upload(tmp_path / "gone.csv")


def test_malformed_csv_names_the_offending_line(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("smiles,y\nCCO,1.0\nCCN,2.0,3.0,4.0\nCCC,3.0\n")
    with pytest.raises(UploadError) as err:
        read_upload(path)
    message = str(err.value)
    assert "not a well-formed CSV" in message
    assert "line 3 has 4 fields but the header has 2" in message


def test_binary_garbage_and_semicolons(tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(UploadError, match="not UTF-8|well-formed|could not be read"):
        read_upload(garbage)
    semi = tmp_path / "semi.csv"
    semi.write_text("smiles;y\nCCO;1\nCCN;2\n")
    with pytest.raises(UploadError, match="semicolon"):
        read_upload(semi)


def test_header_only_csv(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("smiles,y\n")
    with pytest.raises(UploadError, match="no data rows"):
        read_upload(path)


def test_thirty_percent_invalid_smiles_are_reported_not_fatal(tmp_path, smiles):
    good = (smiles * 2)[:70]
    bad = ["C1CC(", "not a molecule", "", "c1cccc1", "[Xy]"] * 6
    frame = pd.DataFrame({"smiles": good + bad, "y": range(100)})
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    table = table_from_frame(read_upload(path), targets=["y"])
    assert table.parsed.n_invalid == 30
    message = validation_message(table)
    assert "30 of 100 rows (30%)" in message
    assert "Warning" in message and "right SMILES column" in message
    assert "unparsable SMILES" in message


def test_no_usable_smiles_column(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(UploadError, match="could not find a (SMILES|molecule) column.*choose the"):
        table_from_frame(read_upload(path), input_type="molecule")
    # auto-detection says what it could not find and what to choose
    with pytest.raises(UploadError, match="column.*choose the input column"):
        table_from_frame(read_upload(path))
    frame = pd.DataFrame({"smiles": ["xx", "yy"], "y": [1, 2]})
    with pytest.raises(UploadError, match="No row of column 'smiles'"):
        table_from_frame(frame)


def test_other_formats_are_parsed(tmp_path, smiles):
    smi = tmp_path / "mols.smi"
    smi.write_text("\n".join(f"{s} mol{i}" for i, s in enumerate(smiles[:5])))
    assert len(read_upload(smi)) == 5
    pq = tmp_path / "mols.parquet"
    pd.DataFrame({"smiles": smiles[:4], "y": range(4)}).to_parquet(pq)
    assert list(read_upload(pq)["y"]) == [0, 1, 2, 3]
    tsv = tmp_path / "mols.tsv"
    tsv.write_text("smiles\ty\nCCO\t1\n")
    assert list(read_upload(tsv).columns) == ["smiles", "y"]


def test_split_column_is_recognised():
    frame = pd.DataFrame({"smiles": ["C", "CC", "CCC"], "Split": ["Train", "val", "TEST"]})
    col, labels = provided_split_labels(frame)
    assert col == "Split" and labels == ["train", "valid", "test"]
    frame["Split"] = ["train", "train", "other"]
    assert provided_split_labels(frame) == (None, None)
