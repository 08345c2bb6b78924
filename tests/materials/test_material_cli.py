"""train / predict / benchmark / relax on compositions and crystal structures, end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from matfuse.cli import EXIT_INVALID_ROWS, app
from matfuse.inputs import detect_input_kind, load_input_table
from matfuse.pipeline import PropertyModel

runner = CliRunner()

A_SITE = ["Sr", "Ba", "Ca", "La", "K", "Na", "Pb", "Cs"]
B_SITE = ["Ti", "Zr", "Nb", "Fe", "Mn", "Co", "Ni", "Al"]


def _perovskite_frame(build, n: int = 48, seed: int = 0) -> pd.DataFrame:
    """ABO3 cells with a target that depends on the lattice constant and the elements."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a_el, b_el = A_SITE[i % len(A_SITE)], B_SITE[(i // len(A_SITE)) % len(B_SITE)]
        a = float(rng.uniform(3.7, 4.2))
        s = build.perovskite(a, (a_el, b_el, "O"))
        y = 2.0 * (a - 3.9) + 0.1 * (i % len(A_SITE)) + rng.normal(0, 0.02)
        rows.append(
            {
                "id": i,
                "cif": s.to(fmt="cif"),
                "formula": s.composition.reduced_formula,
                "y": y,
                "spacegroup_hint": i % 3,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def perov_csv(tmp_path_factory, build):
    path = tmp_path_factory.mktemp("perov") / "perov.csv"
    _perovskite_frame(build).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def structure_model(perov_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "structure"
    res = runner.invoke(
        app, ["train", str(perov_csv), "--target", "y", "--model", "rf", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    return out


def test_detect_input_kind_by_names_and_content(build):
    smiles = pd.DataFrame({"smiles": ["CCO"], "formula": ["C2H6O"]})
    assert detect_input_kind(smiles) == ("molecule", "smiles")
    both = pd.DataFrame({"formula": ["SrTiO3"], "cif": [build.perovskite().to(fmt="cif")]})
    assert detect_input_kind(both) == ("structure", "cif")
    assert detect_input_kind(both, "composition") == ("composition", "formula")
    by_content = pd.DataFrame({"x": ["Fe2O3", "NaCl", "SiO2", "LiFePO4"], "y": [1, 2, 3, 4]})
    assert detect_input_kind(by_content) == ("composition", "x")
    mols = pd.DataFrame({"x": ["CCO", "c1ccccc1", "CC(=O)O", "CCN"]})
    assert detect_input_kind(mols) == ("molecule", "x")
    with pytest.raises(ValueError, match="input type"):
        detect_input_kind(mols, "polymer")


def test_train_structures_auto_detected_and_reported(structure_model):
    config = json.loads((structure_model / "matfuse.json").read_text())
    assert config["params"]["input_type"] == "structure"
    assert config["params"]["encoders"] == ["composition", "structure-descriptors", "chgnet"]
    report = json.loads((structure_model / "report" / "report.json").read_text())
    assert np.isfinite(report["metrics"]["targets"]["y"]["rmse"])


def test_predict_mixed_valid_and_broken_cifs_keeps_every_row(structure_model, tmp_path, build):
    good = _perovskite_frame(build, 6, seed=1)
    overlapping = build.perovskite(0.5).to(fmt="cif")  # atoms 0.25 Å apart
    broken = [
        {"id": 100, "cif": "data_broken\n_cell_length_a 3.9\nnot a cif"},
        {"id": 101, "cif": ""},
        {"id": 102, "cif": overlapping},
    ]
    frame = pd.concat([good[["id", "cif"]], pd.DataFrame(broken)], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    path, out = tmp_path / "new.csv", tmp_path / "pred.csv"
    frame.to_csv(path, index=False)
    res = runner.invoke(app, ["predict", str(structure_model), str(path), "--out", str(out)])
    assert res.exit_code == EXIT_INVALID_ROWS, res.output
    pred = pd.read_csv(out)
    assert pred["id"].tolist() == frame["id"].tolist()  # every row, in order
    bad = pred["id"] >= 100
    assert pred.loc[bad, "error"].notna().all() and pred.loc[~bad, "error"].isna().all()
    assert pred.loc[~bad, "pred_y"].notna().all() and pred.loc[bad, "pred_y"].isna().all()
    assert pred.loc[pred["id"] == 102, "error"].str.contains("overlap|close", case=False).all()
    assert "formula" in pred.columns
    res = runner.invoke(
        app, ["predict", str(structure_model), str(path), "--out", str(out), "--allow-invalid"]
    )
    assert res.exit_code == 0


def test_composition_train_predict_with_bad_formulas(perov_csv, tmp_path):
    out = tmp_path / "comp"
    res = runner.invoke(
        app,
        [
            "train",
            str(perov_csv),
            "--input-type",
            "composition",
            "--target",
            "y",
            "--model",
            "rf",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert PropertyModel.load(out).input_type == "composition"
    new = pd.DataFrame({"formula": ["SrTiO3", "Xx2O3", "", "BaZrO3", "Na(Cl"]})
    path, pred_path = tmp_path / "f.csv", tmp_path / "p.csv"
    new.to_csv(path, index=False)
    res = runner.invoke(app, ["predict", str(out), str(path), "--out", str(pred_path)])
    assert res.exit_code == EXIT_INVALID_ROWS
    pred = pd.read_csv(pred_path)
    assert len(pred) == 5
    assert pred["error"].notna().tolist() == [False, True, True, False, True]
    assert pred["pred_y"].notna().tolist() == [True, False, False, True, False]


def test_molecule_encoders_refuse_materials(perov_csv, tmp_path):
    res = runner.invoke(
        app,
        [
            "train",
            str(perov_csv),
            "--target",
            "y",
            "--encoders",
            "ecfp",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code != 0
    assert "cannot read structure inputs" in str(res.exception) + res.output


def test_benchmark_spacegroup_split_on_structures(tmp_path, build):
    structures = [build.perovskite(3.8 + 0.02 * i, (A_SITE[i % 8], "Ti", "O")) for i in range(16)]
    structures += [
        build.rocksalt(5.0 + 0.05 * i, ["Na", "K", "Rb", "Cs"][i % 4], "Cl") for i in range(16)
    ]
    y = [s.volume / len(s) for s in structures]
    path = tmp_path / "mixed.csv"
    pd.DataFrame({"cif": [s.to(fmt="cif") for s in structures], "y": y}).to_csv(path, index=False)
    out = tmp_path / "bench.json"
    res = runner.invoke(
        app,
        [
            "benchmark",
            str(path),
            "--target",
            "y",
            "--split",
            "spacegroup",
            "--model",
            "rf",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["split"] == "spacegroup"
    assert set(result["representations"]) == {
        "composition",
        "structure-descriptors",
        "chgnet",
        "fused",
    }
    # two structure types, so a space-group-disjoint split tests on one whole type
    assert result["n_test"] == 16


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.text(max_size=40), st.none(), st.sampled_from(["SrTiO3", "Fe2O3"])),
        min_size=1,
        max_size=6,
    )
)
def test_fuzzed_composition_tables_keep_rows(values):
    table = load_input_table(
        pd.DataFrame({"formula": values, "y": 1.0}), input_type="composition", targets=["y"]
    )
    assert len(table.parsed) == len(values)
    for obj, err in zip(table.parsed.objects, table.errors, strict=True):
        assert (obj is None) == (err is not None)


@pytest.mark.slow
def test_relax_cli_relaxes_and_flags_broken_files(tmp_path, build):
    strained = build.rocksalt(5.9)  # NaCl at +5% lattice constant
    good = tmp_path / "nacl.cif"
    strained.to(filename=str(good))
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\nthis is not a crystal\n")
    out = tmp_path / "relaxed"
    res = runner.invoke(app, ["relax", str(good), str(bad), "--out", str(out), "--steps", "60"])
    assert res.exit_code == EXIT_INVALID_ROWS, res.output
    summary = pd.read_csv(out / "summary.csv")
    assert summary["input"].tolist() == ["nacl", "broken"]
    row = summary.iloc[0]
    assert pd.isna(row["error"]) and (out / row["relaxed_cif"]).exists()
    assert row["energy_per_atom_relaxed"] < row["energy_per_atom_initial"]
    assert isinstance(summary.iloc[1]["error"], str)
