import csv

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdkit import Chem

from matfuse.inputs import detect_columns, load_input_table, read_table


def _frame():
    return pd.DataFrame(
        {
            "name": ["ethanol", "broken", "benzene", "empty"],
            "SMILES": ["CCO", "C1CC(", "c1ccccc1", ""],
            "y": [1.0, 2.0, np.nan, 4.0],
            "z": ["0", "1", "x", ""],
        }
    )


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".parquet"])
def test_tabular_formats_round_trip(tmp_path, ext):
    path = tmp_path / f"mols{ext}"
    frame = _frame()
    if ext == ".csv":
        frame.to_csv(path, index=False)
    elif ext == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    else:
        frame.to_parquet(path)
    table = load_input_table(path, targets=["y", "z"])
    assert table.input_col == "SMILES"
    assert len(table) == 4
    assert table.parsed.valid.tolist() == [True, False, True, False]
    Y = table.target_matrix()
    assert Y.shape == (4, 2)
    assert np.isnan(Y[2, 0]) and Y[1, 1] == 1.0 and np.isnan(Y[2, 1]) and np.isnan(Y[3, 1])
    s = table.summary()
    assert s["invalid"] == 2 and s["labels_per_target"] == {"y": 3, "z": 2}


def test_sdf_keeps_unreadable_records(tmp_path):
    path = tmp_path / "mols.sdf"
    writer = Chem.SDWriter(str(path))
    for smi, val in [("CCO", 1.5), ("c1ccccc1", 2.5)]:
        mol = Chem.MolFromSmiles(smi)
        mol.SetProp("_Name", smi)
        mol.SetDoubleProp("SOL", val)
        writer.write(mol)
    writer.close()
    text = path.read_text()
    # append a corrupt record: a pentavalent carbon fails sanitisation
    bad = Chem.MolToMolBlock(Chem.MolFromSmiles("CC")).replace("  2  1", "  2  5") + "$$$$\n"
    path.write_text(text + bad)
    table = load_input_table(path, targets=["SOL"])
    assert len(table) == 3
    assert table.parsed.valid.tolist() == [True, True, False]
    assert "unreadable SDF record 3" in table.errors[2]
    assert table.target_matrix()[:2, 0].tolist() == [1.5, 2.5]


def test_smi_file(tmp_path):
    path = tmp_path / "x.smi"
    path.write_text("SMILES Name\nCCO ethanol\n\nc1ccccc1\n")
    frame = read_table(path)
    assert frame["smiles"].tolist() == ["CCO", "c1ccccc1"]
    assert frame["name"].iloc[0] == "ethanol" and pd.isna(frame["name"].iloc[1])


def test_input_column_by_content_and_errors():
    assert detect_columns(pd.DataFrame({"a": [1, 2], "struct": ["CCO", "CCN"]})) == {
        "struct": "molecule"
    }
    with pytest.raises(ValueError, match="could not find a .* column"):
        detect_columns(pd.DataFrame({"a": ["hello", "world"]}))


def test_missing_target_and_file_errors(tmp_path):
    with pytest.raises(KeyError, match="target column"):
        load_input_table(_frame(), targets=["nope"])
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "none.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_table(tmp_path / "x.xlsx")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=25), min_size=1, max_size=40))
def test_fuzz_csv_round_trip_keeps_every_row(tmp_path_factory, strings):
    path = tmp_path_factory.mktemp("fuzz") / "in.csv"
    # quote every field: a bare carriage return in an unquoted cell is a line break to any
    # CSV reader, so only a well-formed file can be expected to keep its rows
    frame = pd.DataFrame({"smiles": strings, "y": range(len(strings))})
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    table = load_input_table(path, input_col="smiles", targets=["y"])
    assert len(table) == len(strings)
    assert table.target_matrix()[:, 0].tolist() == list(range(len(strings)))
    assert len(table.errors) == len(strings)
