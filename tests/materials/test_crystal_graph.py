"""The end-to-end crystal graph network: as a regressor, and as the registered model
``crystal-graph`` (train/predict from the command line, one model-directory format)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.models.crystal_graph import CrystalGraphRegressor, crystal_graph
from matfuse.models.manifest import UnsafeModelError
from matfuse.pipeline import IncompatibleModelError, PropertyModel, check_model

runner = CliRunner()
#: small and quick: 20 five-atom cells train in well under a second at this size
TINY = {"hidden": 16, "n_conv": 2, "epochs": 8, "batch_size": 8}


def _data(build, n=40, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(3.6, 4.4, n)
    structures = [build.perovskite(float(x), ("Sr", "Ti", "O")) for x in a]
    return structures, 3.0 * (a - 4.0)  # a property of the geometry alone


def test_graph_has_nearest_neighbours_with_images(build):
    g = crystal_graph(build.rocksalt(5.64), cutoff=4.5, max_neighbors=6)
    assert g.numbers.tolist() == [11] * 4 + [17] * 4
    assert g.centers.size == 8 * 6
    np.testing.assert_allclose(g.distances, 2.82, atol=1e-6)  # six Cl around each Na


def test_learns_lattice_dependence_and_keeps_rows(build):
    X, y = _data(build)
    reg = CrystalGraphRegressor(hidden=32, epochs=40, batch_size=8, lr=5e-3)
    reg.fit(X, y)
    assert reg.loss_curve_[-1] < 0.2 * reg.loss_curve_[0]
    test_X, test_y = _data(build, n=10, seed=1)
    pred = reg.predict([*test_X[:5], "not a crystal", *test_X[5:]])
    assert np.isnan(pred[5]) and np.isfinite(np.delete(pred, 5)).all()
    mae = np.abs(np.delete(pred, 5) - test_y).mean()
    assert mae < 0.5 * np.abs(test_y - y.mean()).mean()  # clearly better than the mean
    state, arrays = reg.state()
    again = clone(reg).load_state(json.loads(json.dumps(state)), arrays)
    np.testing.assert_array_equal(again.predict(test_X), np.delete(pred, 5))
    assert clone(reg).get_params() == reg.get_params()


def test_seed_makes_fits_reproducible(build):
    X, y = _data(build, n=16)
    a = CrystalGraphRegressor(hidden=16, epochs=3, batch_size=8).fit(X, y).predict(X)
    b = CrystalGraphRegressor(hidden=16, epochs=3, batch_size=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_needs_two_labelled_structures(build):
    with pytest.raises(ValueError, match="fewer than two"):
        CrystalGraphRegressor(epochs=1).fit([build.perovskite(), "junk"], [1.0, 2.0])


def test_a_feature_matrix_is_refused(build):
    with pytest.raises(ValueError, match="not from a feature matrix"):
        CrystalGraphRegressor(epochs=1).fit(np.zeros((4, 3)), np.arange(4.0))


# -- the registered model ---------------------------------------------------------------------
def test_property_model_saves_one_directory_and_reloads_identically(build, tmp_path):
    X, y = _data(build, n=20)
    Y = np.column_stack([y, -2.0 * y])
    Y[::5, 1] = np.nan  # missing labels are skipped per target
    pm = PropertyModel(model="crystal-graph", input_type="structure", model_params=TINY)
    pm.fit(X, Y, ["y", "z"])
    assert pm.task_types_ == ["regression", "regression"] and len(pm.target_models_) == 2
    table = pm.predict_table([*X[:4], "not a crystal"])
    assert table["error"].notna().tolist() == [False] * 4 + [True]
    assert np.isfinite(table.loc[:3, ["pred_y", "pred_z"]].to_numpy()).all()

    saved = pm.save(tmp_path / "cg")
    assert sorted(p.name for p in saved.iterdir()) == [
        "manifest.json",
        "matfuse.json",
        "model.safetensors",
    ]
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["kind"] == "matfuse.PropertyModel"
    assert set(manifest["files"]) == {"matfuse.json", "model.safetensors"}
    config = json.loads((saved / "matfuse.json").read_text())
    assert config["kind"] == "PropertyModel" and config["params"]["model"] == "crystal-graph"
    assert config["params"]["encoders"] == []  # it reads the structures, not encoders
    assert config["end_to_end"]["model"] == "crystal-graph"

    again = PropertyModel.load(saved)
    assert again.input_type == "structure" and again.target_names_ == ["y", "z"]
    new_X, _ = _data(build, n=6, seed=3)
    np.testing.assert_array_equal(again.predict(new_X), pm.predict(new_X))

    weights = bytearray((saved / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (saved / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(UnsafeModelError, match="model.safetensors"):
        PropertyModel.load(saved)


@pytest.mark.parametrize("kind", ["molecule", "composition", "composition+structure"])
def test_other_inputs_are_refused_with_one_clear_error(kind):
    with pytest.raises(IncompatibleModelError, match="learns from structure inputs only"):
        check_model("crystal-graph", kind)
    check_model("rf", kind)  # models of encoded features read every kind
    with pytest.raises(IncompatibleModelError, match=re.escape(f"not from {kind} inputs")):
        PropertyModel(model="crystal-graph", input_type=kind).fit(["CCO", "CCC"], [1.0, 2.0])


def test_classification_targets_and_encoder_blocks_are_refused(build):
    X, y = _data(build, n=8)
    pm = PropertyModel(model="crystal-graph", input_type="structure", model_params=TINY)
    with pytest.raises(IncompatibleModelError, match="regression only"):
        pm.fit(X, (y > 0).astype(float), ["is_big"])
    with pytest.raises(IncompatibleModelError, match="not from encoder blocks"):
        pm.fit_blocks({"composition": np.zeros((8, 3))}, y)


@pytest.fixture(scope="module")
def perov_tables(tmp_path_factory, build):
    """20 cells to train on and 5 new ones (one not a crystal) to predict, as CIF tables."""
    rng = np.random.default_rng(0)
    a = rng.uniform(3.7, 4.2, 25)
    cif = [build.perovskite(float(x), ("Sr", "Ti", "O")).to(fmt="cif") for x in a]
    root = tmp_path_factory.mktemp("cg_cli")
    pd.DataFrame({"cif": cif[:20], "y": 2.0 * (a[:20] - 3.9)}).to_csv(root / "train.csv")
    pd.DataFrame({"id": range(5), "cif": [*cif[20:24], "not a crystal"]}).to_csv(
        root / "new.csv", index=False
    )
    return root


def test_cli_train_and_predict_with_crystal_graph(perov_tables, tmp_path):
    out = tmp_path / "model"
    args = ["train", str(perov_tables / "train.csv"), "--input-type", "structure"]
    res = runner.invoke(
        app, [*args, "--model", "crystal-graph", "--target", "y", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert (out / "model.safetensors").exists() and (out / "report" / "report.json").exists()
    assert json.loads((out / "matfuse.json").read_text())["params"]["model"] == "crystal-graph"

    pred = tmp_path / "p.csv"
    res = runner.invoke(
        app, ["predict", str(out), str(perov_tables / "new.csv"), "--out", str(pred)]
    )
    assert res.exit_code == 3, res.output  # every row written, the last one invalid
    frame = pd.read_csv(pred)
    assert frame["id"].tolist() == list(range(5))
    assert np.isfinite(frame["pred_y"][:4]).all() and np.isnan(frame["pred_y"][4])
    expected = PropertyModel.load(out).predict(pd.read_csv(perov_tables / "new.csv")["cif"])
    np.testing.assert_allclose(frame["pred_y"][:4], expected[:4, 0], rtol=1e-6)


def test_cli_refuses_crystal_graph_for_molecules_in_one_line(tmp_path):
    data = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": ["CCO", "CCC", "CCN", "c1ccccc1"] * 3, "y": range(12)}).to_csv(
        data, index=False
    )
    out = tmp_path / "m"
    res = runner.invoke(
        app, ["train", str(data), "--model", "crystal-graph", "--target", "y", "--out", str(out)]
    )
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "learns from structure inputs only" in errors[0], res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_models_command_lists_crystal_graph():
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and "crystal-graph" in res.output


def test_cli_refuses_tuning_an_end_to_end_model_in_one_line(tmp_path, build):
    from typer.testing import CliRunner

    from matfuse.cli import app

    rows = [
        {"cif": build.perovskite(3.8 + 0.02 * i).to(fmt="cif"), "y": float(i)} for i in range(12)
    ]
    data = tmp_path / "cells.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    res = CliRunner().invoke(
        app,
        [
            "train",
            str(data),
            "--target",
            "y",
            "--model",
            "crystal-graph",
            "--tune-trials",
            "3",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "--tune-trials does not apply" in res.output
    assert not (tmp_path / "m").exists()
