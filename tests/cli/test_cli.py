import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app

runner = CliRunner()


@pytest.fixture
def train_csv(tmp_path, smiles):
    from conftest_helpers import logp

    path = tmp_path / "train.csv"
    pd.DataFrame({"smiles": smiles, "logp": logp(smiles)}).to_csv(path, index=False)
    return path


@pytest.fixture
def model_dir(tmp_path, train_csv):
    out = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "train",
            str(train_csv),
            "--target",
            "logp",
            "--encoders",
            "ecfp-count,rdkit2d",
            "--model",
            "rf",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def test_encoders_lists_registry():
    res = runner.invoke(app, ["encoders", "--json"])
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["chemnet"]["pretrained"] and rows["maccs"]["dim"] == 167


def test_train_writes_model_and_report(model_dir):
    assert (model_dir / "matfuse.json").exists()
    report = json.loads((model_dir / "report" / "report.json").read_text())
    assert "logp" in report["metrics"]["targets"]
    assert list((model_dir / "report").glob("*.png"))


def test_predict_twenty_rows_three_invalid(tmp_path, model_dir, smiles):
    inputs = smiles[:17] + ["C1CC(", "", "not_a_smiles"]
    order = np.random.default_rng(0).permutation(20)
    frame = pd.DataFrame({"id": range(20), "smiles": [inputs[i] for i in order]})
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(model_dir), str(path), "--out", str(out)])
    assert res.exit_code == 3, res.output  # every row written, but some were invalid
    pred = pd.read_csv(out)
    assert len(pred) == 20
    assert pred["id"].tolist() == list(range(20))  # row order preserved
    assert pred["error"].notna().sum() == 3
    assert pred.loc[pred["error"].isna(), "pred_logp"].notna().all()
    assert pred.loc[pred["error"].notna(), "pred_logp"].isna().all()
    assert "std_logp" in pred.columns  # random forest: spread over trees
    assert "3 invalid" in res.output


def test_featurize_keeps_rows(tmp_path, smiles):
    path = tmp_path / "in.csv"
    pd.DataFrame({"smiles": [*smiles[:3], "x("]}).to_csv(path, index=False)
    out = tmp_path / "f.parquet"
    res = runner.invoke(
        app, ["featurize", str(path), "--encoders", "maccs,ecfp:n_bits=64", "--out", str(out)]
    )
    assert res.exit_code == 3, res.output
    feats = pd.read_parquet(out)
    assert len(feats) == 4 and feats.shape[1] == 3 + 167 + 64
    assert feats["error"].notna().tolist() == [False, False, False, True]


def test_benchmark_on_provided_split(tmp_path, smiles):
    from conftest_helpers import logp

    y = logp(smiles)
    folder = tmp_path / "ds"
    folder.mkdir()
    for name, sl in [("train", slice(0, 28)), ("valid", slice(28, 32)), ("test", slice(32, 40))]:
        pd.DataFrame({"smiles": smiles[sl], "y": y[sl]}).to_csv(folder / f"{name}.csv", index=False)
    out = tmp_path / "res.json"
    res = runner.invoke(
        app,
        [
            "benchmark",
            str(folder),
            "--target",
            "y",
            "--encoders",
            "maccs,rdkit2d",
            "--model",
            "rf",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["split"] == "predefined" and result["n_test"] == 8
    assert set(result["representations"]) == {"maccs", "rdkit2d", "fused"}
    assert "rmse" in res.output


def test_train_missing_target_is_an_error(train_csv, tmp_path):
    res = runner.invoke(
        app, ["train", str(train_csv), "--target", "nope", "--out", str(tmp_path / "m")]
    )
    assert res.exit_code != 0


def test_split_params_reach_the_splitter_and_the_report(tmp_path):
    formulas = [f"{a}{b}O3" for a in ("Sr", "Ba", "Ca", "Pb") for b in ("Ti", "Zr", "Hf", "Sn")]
    frame = pd.DataFrame({"formula": formulas * 2, "y": list(range(len(formulas) * 2))})
    data = tmp_path / "oxides.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "train",
            str(data),
            "--target",
            "y",
            "--model",
            "rf",
            "--split",
            "element",
            "--split-param",
            "element=Zr",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "every material containing Zr" in res.output
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["extra"]["split"]["params"]["element"] == "Zr"
    assert report["counts"]["test"] == 8  # the 8 rows holding Zr
    res = runner.invoke(
        app, ["train", str(data), "--target", "y", "--split-param", "nokey", "--out", str(out)]
    )
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output
