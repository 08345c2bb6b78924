import numpy as np
import pytest

from matfuse.pipeline import PropertyModel

FAST_XGB = {"n_estimators": 60}


@pytest.fixture
def fitted(smiles):
    from conftest_helpers import logp

    y = logp(smiles)
    model = PropertyModel(
        encoders=["ecfp-count", "rdkit2d"], model="xgboost", model_params=FAST_XGB
    )
    return model.fit(smiles, y, ["logp"]), y


def test_fit_predict_learns_a_real_signal(fitted, smiles):
    model, y = fitted
    pred = model.predict(smiles)[:, 0]
    assert np.corrcoef(pred, y)[0, 1] > 0.9
    assert model.task_types_ == ["regression"] and model.n_train_ == len(smiles)


def test_predict_table_keeps_every_row_and_flags_invalid(fitted):
    model, _ = fitted
    table = model.predict_table(["CCO", "C1CC(", "", "c1ccccc1N"])
    assert len(table) == 4
    assert table["error"].isna().tolist() == [True, False, False, True]
    assert np.isnan(table.loc[1, "pred_logp"]) and np.isfinite(table.loc[0, "pred_logp"])
    # conformal intervals bracket the prediction for valid rows
    ok = table["error"].isna()
    assert (table.loc[ok, "lower_logp"] <= table.loc[ok, "pred_logp"]).all()
    assert (table.loc[ok, "upper_logp"] >= table.loc[ok, "pred_logp"]).all()


def test_save_load_gives_identical_predictions(fitted, tmp_path, smiles):
    model, _ = fitted
    model.save(tmp_path / "m")
    loaded = PropertyModel.load(tmp_path / "m")
    a = model.predict_table([*smiles, "bad("])
    b = loaded.predict_table([*smiles, "bad("])
    assert a.equals(b)
    assert (tmp_path / "m" / "matfuse.json").exists()
    assert not list((tmp_path / "m").rglob("*.pkl"))


def test_multitask_classification_with_missing_labels(smiles):
    rng = np.random.default_rng(0)
    n = len(smiles)
    from conftest_helpers import logp

    lp = logp(smiles)
    Y = np.column_stack([(lp > np.median(lp)).astype(float), (lp > 2).astype(float)])
    Y[rng.random((n, 2)) < 0.3] = np.nan
    model = PropertyModel(encoders=["maccs"], model="rf").fit(smiles, Y, ["a", "b"])
    assert model.task_types_ == ["classification", "classification"]
    P = model.predict(smiles)
    assert P.shape == (n, 2) and np.all((P >= 0) & (P <= 1))


def test_not_a_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a matfuse model"):
        PropertyModel.load(tmp_path)
