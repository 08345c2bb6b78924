"""Fine-tuned foundation encoders: as estimators, and as the registered end-to-end models
``finetune-<encoder>`` (PropertyModel, save/load, command line)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from sklearn.base import clone
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.foundation.finetune import FinetunedEncoderClassifier, FinetunedEncoderRegressor
from matfuse.models import get_spec, list_models
from matfuse.models.manifest import UnsafeModelError
from matfuse.pipeline import END_TO_END_WEIGHTS, IncompatibleModelError, PropertyModel

runner = CliRunner()
#: a few quick epochs at a small batch: seconds per fit on one core
TINY = {"max_epochs": 3, "batch_size": 8, "mc_samples": 4}

ALKANES = ["C" * n for n in range(1, 9)] + [
    "CC(C)C",
    "CC(C)CC",
    "CCC(C)CC",
    "CC(C)(C)C",
    "CC(C)CCC",
    "CCCC(C)C",
]
AROMATICS = [
    "c1ccccc1",
    "Cc1ccccc1",
    "CCc1ccccc1",
    "c1ccc2ccccc2c1",
    "Oc1ccccc1",
    "Nc1ccccc1",
    "Clc1ccccc1",
    "c1ccncc1",
    "Cc1ccncc1",
    "c1ccc(-c2ccccc2)cc1",
]
OTHERS = ["CCO", "CCCO", "CC(=O)O", "CCN", "CCOCC", "OCCO", "CC(=O)C", "CCCCO", "NCCO", "CC#N"]
SMILES = ALKANES + AROMATICS + OTHERS


def heavy_atoms(smiles: list[str]) -> np.ndarray:
    return np.array([Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in smiles], dtype=float)


def aromatic(smiles: list[str]) -> np.ndarray:
    return np.array([float(s in AROMATICS) for s in smiles])


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("encoder", ["selfies-ted", "graph-ged"])
def test_regressor_learns_size_and_keeps_rows_aligned(encoder: str):
    y = heavy_atoms(SMILES)
    reg = FinetunedEncoderRegressor(encoder, max_epochs=25, batch_size=8, head_lr=3e-3)
    reg.fit([*SMILES, "not a molecule"], [*y, 5.0])  # the bad row is skipped, not fatal
    assert reg.n_train_ == len(SMILES) - round(0.1 * len(SMILES))  # 10 % held out
    new = ["CCCCCCCCC", "CCCCCCCCCC", "CCCc1ccccc1", "CO", "C1CCCCC1", "OCCCCO"]
    pred = reg.predict([*new[:3], "C1CC", *new[3:]])
    assert np.isnan(pred[3]) and np.isfinite(np.delete(pred, 3)).all()
    truth = heavy_atoms(new)
    rmse = np.sqrt(np.mean((np.delete(pred, 3) - truth) ** 2))
    assert rmse < 0.6 * np.sqrt(np.mean((truth - y.mean()) ** 2))  # clearly beats the mean
    std = reg.predict_std(new)
    assert std.shape == (len(new),) and (std > 0).all()
    assert len(reg.history_) >= 1 and 0 <= reg.best_epoch_ < 25


def test_state_round_trip_predicts_identically_and_is_json():
    y = heavy_atoms(SMILES)
    reg = FinetunedEncoderRegressor("smi-ted", **TINY).fit(SMILES, y)
    config, arrays = reg.state()
    assert not any(k.startswith("decoder") for k in arrays)  # the decoder is not kept
    again = clone(reg).load_state(json.loads(json.dumps(config)), arrays)
    new = ["CCCCO", "c1ccccc1C", "CCN(CC)CC"]
    np.testing.assert_array_equal(again.predict(new), reg.predict(new))
    np.testing.assert_array_equal(again.predict_std(new), reg.predict_std(new))
    assert clone(reg).get_params() == reg.get_params()


def test_same_seed_same_model_other_seed_other_model():
    y = heavy_atoms(SMILES)
    a = FinetunedEncoderRegressor("selfies-ted", **TINY).fit(SMILES, y).predict(SMILES)
    b = FinetunedEncoderRegressor("selfies-ted", **TINY).fit(SMILES, y).predict(SMILES)
    c = FinetunedEncoderRegressor("selfies-ted", random_state=1, **TINY).fit(SMILES, y)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c.predict(SMILES))


def _pretrained_embedding(encoder: str) -> torch.Tensor:
    from matfuse.foundation.model_dir import load_model_dir
    from matfuse.foundation.weights import weights_dir

    return load_model_dir(weights_dir(encoder)).model.encoder.embed.weight.detach().clone()


def test_warmup_and_freezing_keep_pretrained_weights():
    y = heavy_atoms(SMILES)
    pretrained = _pretrained_embedding("selfies-ted")
    warm = FinetunedEncoderRegressor("selfies-ted", max_epochs=1, warmup_epochs=1, batch_size=8)
    torch.testing.assert_close(warm.fit(SMILES, y).net_.encoder.embed.weight, pretrained)
    frozen = FinetunedEncoderRegressor(
        "selfies-ted", max_epochs=2, warmup_epochs=0, freeze_layers=1, batch_size=8
    ).fit(SMILES, y)
    torch.testing.assert_close(frozen.net_.encoder.embed.weight, pretrained)
    first = frozen.net_.encoder.stack.layers[0].linear1.weight
    last = frozen.net_.encoder.stack.layers[-1].linear1.weight
    from matfuse.foundation.model_dir import load_model_dir
    from matfuse.foundation.weights import weights_dir

    layers = load_model_dir(weights_dir("selfies-ted")).model.encoder.stack.layers
    torch.testing.assert_close(first, layers[0].linear1.weight)
    assert not torch.allclose(last, layers[-1].linear1.weight)  # the unfrozen layer trained
    tuned = FinetunedEncoderRegressor("selfies-ted", max_epochs=2, warmup_epochs=0, batch_size=8)
    assert not torch.allclose(tuned.fit(SMILES, y).net_.encoder.embed.weight, pretrained)


def test_callback_sees_every_epoch_and_max_minutes_stops_early():
    seen: list[dict] = []
    y = heavy_atoms(SMILES)
    reg = FinetunedEncoderRegressor("graph-ged", max_epochs=3, batch_size=8, callback=seen.append)
    reg.fit(SMILES, y)
    assert [s["epoch"] for s in seen] == [0, 1, 2] and all(s["val_loss"] > 0 for s in seen)
    quick = FinetunedEncoderRegressor("graph-ged", max_epochs=50, batch_size=8, max_minutes=0.0)
    assert len(quick.fit(SMILES, y).history_) == 1


def test_classifier_gives_probabilities_labels_and_spread():
    y = aromatic(SMILES)
    clf = FinetunedEncoderClassifier("selfies-ted", max_epochs=15, batch_size=8, head_lr=3e-3)
    clf.fit(SMILES, y)
    new = ["CCc1ccccc1C", "Brc1ccccc1", "CCCCCCO", "CC(C)CCO"]
    proba = clf.predict_proba([*new, "xyz"])
    assert proba.shape == (5, 2) and np.isnan(proba[4]).all()
    assert np.allclose(proba[:4].sum(axis=1), 1.0)
    assert proba[:2, 1].min() > proba[2:4, 1].max()  # aromatics rank above the alcohols
    assert set(clf.predict(new)) <= {0.0, 1.0}
    assert (clf.predict_std(new) >= 0).all()


def test_classifier_balances_a_rare_class_and_keeps_its_base_rate(tmp_path):
    """3 positives in 34: the balanced loss weighs them ~10x; the logit offset (the
    training log-odds) is applied at prediction and travels with a saved model."""
    y = np.array([float(s in AROMATICS[:3]) for s in SMILES])
    clf = FinetunedEncoderClassifier("graph-ged", **TINY).fit(SMILES, y)
    neg, pos = clf.class_weights_
    assert pos > 8 * neg
    assert clf.logit_offset_ == pytest.approx(np.log(3 / 31))
    plain = FinetunedEncoderClassifier("graph-ged", class_weight=None, **TINY).fit(SMILES, y)
    assert plain.class_weights_ == (1.0, 1.0) and plain.logit_offset_ == 0.0
    logits = clf._outputs(SMILES)[0]
    np.testing.assert_allclose(
        clf.predict_proba(SMILES)[:, 1], 1 / (1 + np.exp(-(logits + clf.logit_offset_)))
    )
    config, arrays = clf.state()
    again = FinetunedEncoderClassifier("graph-ged", **TINY).load_state(config, arrays)
    np.testing.assert_array_equal(again.predict_proba(SMILES), clf.predict_proba(SMILES))
    with pytest.raises(ValueError, match="class_weight"):
        FinetunedEncoderClassifier(class_weight="inverse", **TINY).fit(SMILES, y)


def test_bad_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="not from a feature matrix"):
        FinetunedEncoderRegressor(**TINY).fit(np.zeros((4, 3)), np.arange(4.0))
    with pytest.raises(ValueError, match="fewer than two"):
        FinetunedEncoderRegressor(**TINY).fit(["CCO", "junk"], [1.0, 2.0])
    with pytest.raises(ValueError, match="encoder must be one of"):
        FinetunedEncoderRegressor("ecfp", **TINY).fit(SMILES, heavy_atoms(SMILES))
    with pytest.raises(ValueError, match="two classes"):
        FinetunedEncoderClassifier(**TINY).fit(SMILES, np.ones(len(SMILES)))


# -- the registered models --------------------------------------------------------------------
def test_registered_for_molecules_only():
    spec = get_spec("finetune-selfies-ted")
    assert spec.end_to_end and spec.input_kinds == ("molecule",)
    assert spec.supports("regression") and spec.supports("classification")
    molecule_models = {s.name for s in list_models(kind="molecule", task="classification")}
    assert {"finetune-smi-ted", "finetune-graph-ged"} <= molecule_models
    assert "finetune-smi-ted" not in {s.name for s in list_models(kind="structure")}
    with pytest.raises(IncompatibleModelError, match="learns from molecule inputs only"):
        PropertyModel(model="finetune-graph-ged", input_type="composition").fit(
            ["NaCl", "KCl"], [1.0, 2.0]
        )


def test_property_model_saves_reloads_identically_and_rejects_tampering(tmp_path):
    Y = np.column_stack([heavy_atoms(SMILES), aromatic(SMILES)])
    Y[::7, 0] = np.nan  # missing labels are skipped per target
    pm = PropertyModel(model="finetune-graph-ged", model_params=TINY)
    pm.fit(SMILES, Y, ["size", "is_aromatic"])
    assert pm.task_types_ == ["regression", "classification"]
    new = ["CCCCO", "c1ccccc1CC", "not a molecule"]
    table = pm.predict_table(new)
    assert table["error"].notna().tolist() == [False, False, True]
    assert {"pred_size", "std_size", "pred_is_aromatic", "std_is_aromatic"} <= set(table)
    probs = table["pred_is_aromatic"][:2]
    assert ((probs > 0) & (probs < 1)).all()

    saved = pm.save(tmp_path / "ft")
    config = json.loads((saved / "matfuse.json").read_text())
    assert config["params"]["encoders"] == [] and config["end_to_end"]["model"] == pm.model
    again = PropertyModel.load(saved)
    for key in ("pred", "std"):
        np.testing.assert_array_equal(
            again.predict_with_uncertainty(again.blocks(new))[key],
            pm.predict_with_uncertainty(pm.blocks(new))[key],
        )

    weights = bytearray((saved / END_TO_END_WEIGHTS).read_bytes())
    weights[-1] ^= 1
    (saved / END_TO_END_WEIGHTS).write_bytes(bytes(weights))
    with pytest.raises(UnsafeModelError, match=END_TO_END_WEIGHTS):
        PropertyModel.load(saved)


def test_cli_train_and_predict_with_a_finetuned_encoder(tmp_path):
    train = tmp_path / "train.csv"
    pd.DataFrame({"smiles": SMILES, "y": heavy_atoms(SMILES)}).to_csv(train, index=False)
    out = tmp_path / "model"
    args = ["train", str(train), "--model", "finetune-selfies-ted", "--target", "y"]
    res = runner.invoke(app, [*args, "--out", str(out)])  # module defaults: 30 epochs
    assert res.exit_code == 0, res.output
    assert json.loads((out / "matfuse.json").read_text())["params"]["model"] == (
        "finetune-selfies-ted"
    )
    new = tmp_path / "new.csv"
    pd.DataFrame({"smiles": ["CCCCO", "c1ccccc1"]}).to_csv(new, index=False)
    pred = tmp_path / "p.csv"
    res = runner.invoke(app, ["predict", str(out), str(new), "--out", str(pred)])
    assert res.exit_code == 0, res.output
    expected = PropertyModel.load(out).predict(["CCCCO", "c1ccccc1"])[:, 0]
    np.testing.assert_allclose(pd.read_csv(pred)["pred_y"], expected, rtol=1e-6)
