"""Learned fusion (gated mixture / attention over blocks): masks, seeds, gates, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matfuse.fusion.learned import (
    FusionNet,
    LearnedFusionClassifier,
    LearnedFusionRegressor,
    modality_dropout,
)
from matfuse.models import PropertyEstimator

SLICES = {"a": (0, 6), "b": (6, 10)}
FAST = {"n_members": 2, "max_epochs": 40, "patience": 8, "width": 16, "hidden": 32}


def _two_blocks(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Block a (6 columns) carries the signal, block b (4 columns) is noise."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 6))
    b = rng.normal(size=(n, 4))
    y = 2.0 * a[:, 0] - a[:, 1] + 0.5 * a[:, 2] * a[:, 3] + 0.1 * rng.normal(size=n)
    return np.hstack([a, b]), y


@pytest.mark.parametrize("fusion", ["moe", "attention"])
def test_the_net_ignores_a_masked_token_whatever_its_values(fusion: str) -> None:
    torch.manual_seed(0)
    net = FusionNet([6, 4], fusion=fusion, width=16, hidden=16).eval()
    a = torch.randn(8, 6)
    mask = torch.tensor([[True, False]] * 4 + [[True, True]] * 4)
    with torch.no_grad():
        out1, w1 = net([a, torch.randn(8, 4)], mask)
        out2, w2 = net([a, 100 * torch.randn(8, 4)], mask)
    torch.testing.assert_close(out1[:4], out2[:4], rtol=0, atol=0)
    assert torch.all(w1[:4, 1] == 0) and torch.allclose(w1[:4, 0], torch.ones(4))
    assert not torch.allclose(out1[4:], out2[4:])  # where b is present, it is read


@pytest.mark.parametrize("fusion", ["moe", "attention"])
def test_a_masked_or_missing_block_does_not_change_predictions(fusion: str) -> None:
    X, y = _two_blocks()
    model = LearnedFusionRegressor(blocks=SLICES, fusion=fusion, **FAST).fit(X, y)
    rng = np.random.default_rng(5)
    other = X.copy()
    other[:, 6:] = rng.normal(scale=10.0, size=(len(X), 4))
    mask = np.tile([True, False], (len(X), 1))
    np.testing.assert_array_equal(model.predict(X, mask=mask), model.predict(other, mask=mask))
    missing = X.copy()
    missing[:, 6:] = np.nan  # how late fusion marks a block it could not compute
    np.testing.assert_array_equal(model.predict(missing), model.predict(X, mask=mask))
    assert not np.allclose(model.predict(X), model.predict(other))  # unmasked, b is read


def test_modality_dropout_hides_only_present_blocks_and_keeps_one() -> None:
    mask = torch.tensor([[True, True, True], [True, False, False], [False, True, True]] * 200)
    gen = torch.Generator().manual_seed(0)
    kept = modality_dropout(mask, 0.9, gen)
    assert torch.all(kept.sum(dim=1) >= 1)
    assert not torch.any(kept & ~mask)
    assert kept.sum() < 0.6 * mask.sum()  # it does drop
    assert torch.equal(modality_dropout(mask, 0.0), mask)


def test_same_seed_same_model_other_seed_another() -> None:
    X, y = _two_blocks()
    first = LearnedFusionRegressor(blocks=SLICES, random_state=3, **FAST).fit(X, y).predict(X)
    again = LearnedFusionRegressor(blocks=SLICES, random_state=3, **FAST).fit(X, y).predict(X)
    other = LearnedFusionRegressor(blocks=SLICES, random_state=4, **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("fusion", ["moe", "attention"])
def test_the_informative_block_gets_most_of_the_weight(fusion: str) -> None:
    X, y = _two_blocks(400)
    model = LearnedFusionRegressor(blocks=SLICES, fusion=fusion, **FAST).fit(X[:300], y[:300])
    weights = model.modality_weights(X[300:])
    assert weights.shape == (100, 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    if fusion == "moe":  # attention may silence b through its values instead of its weights
        assert weights[:, 0].mean() > 0.75
    pred = model.predict(X[300:])
    mae, trivial = np.abs(pred - y[300:]).mean(), np.abs(y[300:] - y[:300].mean()).mean()
    assert mae < 0.5 * trivial


def test_spread_and_rows_without_any_block() -> None:
    X, y = _two_blocks()
    model = LearnedFusionRegressor(blocks=SLICES, **FAST).fit(X, y)
    X_new = X[:5].copy()
    X_new[0] = np.nan
    pred, std = model.predict(X_new), model.predict_std(X_new)
    assert np.isnan(pred[0]) and np.isfinite(pred[1:]).all()
    assert np.isnan(std[0]) and (std[1:] > 0).all()


def test_binary_classification_probabilities_and_spread() -> None:
    X, y = _two_blocks(300)
    labels = (y > 0).astype(int)
    clf = LearnedFusionClassifier(blocks=SLICES, **FAST).fit(X[:240], labels[:240])
    proba = clf.predict_proba(X[240:])
    assert proba.shape == (60, 2) and np.all((proba >= 0) & (proba <= 1))
    assert (clf.predict(X[240:]) == labels[240:]).mean() > 0.8
    assert clf.predict_std(X[240:]).shape == (60,)
    with pytest.raises(ValueError, match="two classes"):
        LearnedFusionClassifier(**FAST).fit(X[:20], np.zeros(20))


def test_a_rare_class_is_ranked_by_the_balanced_loss_and_keeps_its_base_rate() -> None:
    """10 % positives: the balanced net ranks them at least as well as the unweighted
    one, and its probabilities, shifted back by the training log-odds, stay near 10 %."""
    from sklearn.metrics import roc_auc_score

    X, y = _two_blocks(900, seed=3)
    labels = (y > np.quantile(y, 0.9)).astype(int)
    fits = {
        cw: LearnedFusionClassifier(blocks=SLICES, class_weight=cw, **FAST).fit(
            X[:600], labels[:600]
        )
        for cw in ("balanced", None)
    }
    auc = {
        cw: roc_auc_score(labels[600:], m.predict_proba(X[600:])[:, 1]) for cw, m in fits.items()
    }
    assert auc["balanced"] > 0.9 and auc["balanced"] >= auc[None] - 0.02
    balanced = fits["balanced"]
    assert balanced.class_weights_[1] > 4 * balanced.class_weights_[0]
    assert abs(balanced.predict_proba(X[:600])[:, 1].mean() - labels[:600].mean()) < 0.05
    with pytest.raises(ValueError, match="class_weight"):
        LearnedFusionClassifier(class_weight="inverse", **FAST).fit(X[:60], labels[:60])


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("model", ["fusion-moe", "fusion-attention"])
def test_property_estimator_round_trip_is_identical(tmp_path, model: str, task: str) -> None:
    X, y = _two_blocks(150)
    X[::7, 6:] = np.nan  # some rows lack block b
    target = (y > 0).astype(float) if task == "classification" else y
    params = {**FAST, "blocks": SLICES}
    est = PropertyEstimator(model=model, model_params=params).fit(X[:120], target[:120])
    assert est.uncertainty_ == (["native"] if task == "regression" else ["none"])
    loaded = PropertyEstimator.load(est.save(tmp_path / "m"))
    np.testing.assert_array_equal(est.predict(X[120:]), loaded.predict(X[120:]))
    if task == "regression":
        np.testing.assert_array_equal(est.predict_std(X[120:]), loaded.predict_std(X[120:]))
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "target_0_tensors_0.safetensors" in names
    assert not any(n.endswith((".pkl", ".pt", ".pth", ".joblib")) for n in names)


def _perovskite_table(n: int = 48):
    """Cubic ABO3 cells; every third row has no CIF (its structure block is missing)."""
    pytest.importorskip("pymatgen")
    import pandas as pd
    from pymatgen.core import Lattice, Structure

    from matfuse.inputs import load_input_table

    sites = [("Sr", "Ti"), ("Ba", "Zr"), ("Ca", "Ti"), ("La", "Al"), ("K", "Nb"), ("Pb", "Ti")]
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    rng = np.random.default_rng(2)
    rows = []
    for i in range(n):
        a_el, b_el = sites[i % len(sites)]
        a = float(rng.uniform(3.7, 4.3))
        s = Structure(Lattice.cubic(a), [a_el, b_el, "O", "O", "O"], coords)
        rows.append(
            {
                "formula": s.composition.reduced_formula,
                "cif": None if i % 3 == 0 else s.to(fmt="cif"),
                "y": 3.0 * (a - 4.0) + 0.3 * (i % len(sites)),
            }
        )
    frame = pd.DataFrame(rows)
    return load_input_table(frame, input_col=["formula", "cif"], targets=["y"]), frame


def test_property_model_with_fusion_moe_end_to_end(tmp_path) -> None:
    from matfuse.pipeline import PropertyModel

    table, frame = _perovskite_table()
    model = PropertyModel(
        encoders=["composition", "structure-descriptors"],
        model="fusion-moe",
        input_type="composition+structure",
        model_params=FAST,
    ).fit(table.parsed, frame["y"].to_numpy())
    net = model.estimator_.target_models_[0].estimator
    assert net.block_names_ == ["composition", "structure-descriptors"]
    assert model.get_params()["model_params"] == FAST  # the slices are not user params
    pred = model.predict(table.parsed)
    assert pred.shape == (len(frame), 1) and np.isfinite(pred).all()  # no-CIF rows too
    weights = net.modality_weights(model.fusion_.transform_blocks(model.blocks(table.parsed)))
    np.testing.assert_array_equal(weights[::3, 1], 0.0)  # no structure, no weight on it
    loaded = PropertyModel.load(model.save(tmp_path / "m"))
    res, res_loaded = (m.predict_with_uncertainty(m.blocks(table.parsed)) for m in (model, loaded))
    np.testing.assert_array_equal(res["pred"], res_loaded["pred"])
    np.testing.assert_array_equal(res["std"], res_loaded["std"])
    assert np.isfinite(res["std"]).all()


def test_cli_trains_and_predicts_with_fusion_attention(tmp_path, smiles) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from matfuse.cli import app
    from matfuse.pipeline import PropertyModel

    y = [len(s) + 0.5 * s.count("O") for s in smiles]  # a property the blocks carry
    pd.DataFrame({"smiles": smiles, "y": y}).to_csv(tmp_path / "d.csv", index=False)
    runner = CliRunner()
    args = ["train", str(tmp_path / "d.csv"), "--target", "y", "--model", "fusion-attention"]
    res = runner.invoke(app, [*args, "--encoders", "maccs,rdkit2d", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        ["predict", str(tmp_path / "m"), str(tmp_path / "d.csv"), "--out", str(tmp_path / "p.csv")],
    )
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "p.csv")
    assert np.isfinite(pred["pred_y"]).all() and (pred["std_y"] > 0).all()
    # models that do not ask for block slices get their parameters untouched
    plain = PropertyModel(model="xgboost", model_params={"max_depth": 3})
    assert plain._with_block_slices(plain.model_params) is plain.model_params
