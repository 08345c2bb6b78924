"""Cross-modal translators and ImputingFusion: recovery, choice of translator, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import RidgeCV

from matfuse.fusion.impute import ImputingFusion, fit_translator
from matfuse.fusion.late import LateFusion

#: real encoder names (LateFusion reloads block widths from the encoder registry), fake data
A, B = "composition", "structure-descriptors"


def _linked_blocks(n: int = 400, seed: int = 0, nonlinear: bool = False):
    """Block B is a (noisy) function of block A; y depends on B's first columns."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 150))
    mix = rng.normal(size=(150, 60)) / np.sqrt(150)
    b = a @ mix
    if nonlinear:
        b = np.tanh(2 * b) + 0.5 * b**2
    b += 0.05 * rng.normal(size=b.shape)
    y = b[:, 0] + 2 * b[:, 1] - b[:, 2] + 0.05 * rng.normal(size=n)
    return {A: a, B: b}, y


def _hide(blocks, rows):
    out = {k: v.copy() for k, v in blocks.items()}
    out[B][rows] = np.nan
    return out


def test_imputation_recovers_a_linearly_related_block() -> None:
    blocks, _ = _linked_blocks()
    train = {k: v[:300] for k, v in blocks.items()}
    test = _hide({k: v[300:] for k, v in blocks.items()}, slice(None))
    fusion = ImputingFusion([A, B]).fit_blocks(train)
    truth = fusion.fusion_.transform_blocks({k: v[300:] for k, v in blocks.items()})
    filled = fusion.transform_blocks(test)
    lo, hi = fusion.block_slices_[B]
    resid = ((filled[:, lo:hi] - truth[:, lo:hi]) ** 2).sum()
    total = ((truth[:, lo:hi] - truth[:, lo:hi].mean(axis=0)) ** 2).sum()
    assert 1 - resid / total > 0.9
    assert fusion.translators_[(B, A)].kind == "ridge"  # a linear map: ridge wins
    assert fusion.imputed_mask(test)[B].all() and not fusion.imputed_mask(test)[A].any()
    np.testing.assert_array_equal(filled[:, :lo], truth[:, :lo])  # present blocks untouched


def test_blocks_of_one_input_kind_get_no_translator_between_them() -> None:
    """Two structure blocks go missing together, so only cross-kind pairs are fitted
    unless ``within_kind`` asks for the others too."""
    blocks, _ = _linked_blocks()
    rng = np.random.default_rng(3)
    blocks["chgnet"] = blocks[B] @ rng.normal(size=(60, 65)) / 8
    fusion = ImputingFusion([A, B, "chgnet"], translators=("ridge",)).fit_blocks(blocks)
    assert set(fusion.translators_) == {(A, B), (A, "chgnet"), (B, A), ("chgnet", A)}
    both = ImputingFusion([A, B, "chgnet"], translators=("ridge",), within_kind=True)
    assert ("chgnet", B) in both.fit_blocks(blocks).translators_


def test_the_mlp_is_chosen_for_a_nonlinear_map() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(600, 2))
    target = np.column_stack([np.sin(2 * x[:, 0]) * x[:, 1], np.abs(x[:, 0]) - x[:, 1] ** 2])
    tr = fit_translator(x, target)
    assert tr.kind == "mlp"
    assert tr.validation_mse["mlp"] < 0.5 * tr.validation_mse["ridge"]
    assert tr.validation_r2 > 0.7


def test_imputation_beats_mean_filling_downstream() -> None:
    blocks, y = _linked_blocks(500, seed=2)
    train = {k: v[:400] for k, v in blocks.items()}
    test = _hide({k: v[400:] for k, v in blocks.items()}, slice(None))
    imputing = ImputingFusion([A, B]).fit_blocks(train)
    late = LateFusion([A, B]).fit_blocks(train)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(late.transform_blocks(train), y[:400])
    mean_filled = np.nan_to_num(late.transform_blocks(test))  # scaled block mean = 0
    mae_mean = np.abs(model.predict(mean_filled) - y[400:]).mean()
    mae_imputed = np.abs(model.predict(imputing.transform_blocks(test)) - y[400:]).mean()
    assert mae_imputed < 0.7 * mae_mean


def test_rows_without_a_source_keep_nan_and_small_pairs_get_no_translator() -> None:
    blocks, _ = _linked_blocks(200)
    test = _hide({k: v[:4] for k, v in blocks.items()}, slice(None))
    test[A][0] = np.nan  # row 0 has neither block
    fusion = ImputingFusion([A, B], impute=[B]).fit_blocks(blocks)
    assert set(fusion.translators_) == {(B, A)}
    X = fusion.transform_blocks(test)
    assert np.isnan(X[0]).all() and np.isfinite(X[1:]).all()
    few = {k: v.copy() for k, v in blocks.items()}
    few[B][10:] = np.nan
    assert ImputingFusion([A, B], min_pairs=20).fit_blocks(few).translators_ == {}
    with pytest.raises(ValueError, match="not among the encoders"):
        ImputingFusion([A, B], impute=["chgnet"]).fit_blocks(blocks)


def test_state_round_trip_gives_identical_fills(tmp_path) -> None:
    blocks, _ = _linked_blocks(300, nonlinear=True)
    fusion = ImputingFusion([A, B]).fit_blocks(blocks)
    test = _hide({k: v[:50] for k, v in blocks.items()}, slice(0, 25))
    save_file(fusion.state_tensors(), str(tmp_path / "impute.safetensors"))
    fresh = ImputingFusion([A, B]).load_state(
        fusion.state_config(), load_file(str(tmp_path / "impute.safetensors"))
    )
    np.testing.assert_array_equal(fresh.transform_blocks(test), fusion.transform_blocks(test))


# -- PropertyModel(impute=...) ---------------------------------------------------------


def _property_model(**kw):
    from matfuse.pipeline import PropertyModel

    params = {"encoders": [A, B], "model": "linear", "input_type": "composition+structure"}
    return PropertyModel(**{**params, **kw})


def test_property_model_imputes_a_multimodal_input_by_default() -> None:
    from matfuse.pipeline import PropertyModel

    assert _property_model().imputes
    assert not _property_model(impute="none").imputes
    assert not _property_model(model="fusion-moe").imputes  # masks missing blocks itself
    assert _property_model(model="fusion-moe", impute="translate").imputes
    assert not PropertyModel(encoders=["ecfp", "rdkit2d"]).imputes  # one kind: no translators
    assert PropertyModel(encoders=["ecfp", "rdkit2d"], impute="translate").imputes
    with pytest.raises(ValueError, match="impute must be one of"):
        _ = _property_model(impute="sometimes").imputes


def test_property_model_imputation_beats_nan_handling_on_hidden_rows() -> None:
    blocks, y = _linked_blocks(500, seed=3)
    train = {k: v[:400] for k, v in blocks.items()}
    test = _hide({k: v[400:] for k, v in blocks.items()}, slice(None))
    imputing = _property_model().fit_blocks(train, y[:400])
    plain = _property_model(impute="none").fit_blocks(train, y[:400])
    err = {
        name: np.abs(m.predict_blocks(test)[:, 0] - y[400:]).mean()
        for name, m in (("imputed", imputing), ("none", plain))
    }
    assert err["imputed"] < 0.7 * err["none"], err
    complete = {k: v[400:] for k, v in blocks.items()}  # nothing missing: the same model
    np.testing.assert_allclose(
        imputing.predict_blocks(complete), plain.predict_blocks(complete), rtol=1e-6
    )


def test_property_model_with_imputation_round_trips(tmp_path) -> None:
    import json

    from matfuse.pipeline import PropertyModel

    blocks, y = _linked_blocks(300, nonlinear=True)
    model = _property_model(model="rf", uncertainty="none").fit_blocks(blocks, y)
    test = _hide({k: v[:60] for k, v in blocks.items()}, slice(0, 30))
    loaded = PropertyModel.load(model.save(tmp_path / "m"))
    assert loaded.imputes and set(loaded.fusion_.translators_) == set(model.fusion_.translators_)
    np.testing.assert_array_equal(loaded.predict_blocks(test), model.predict_blocks(test))
    config = json.loads((tmp_path / "m" / "matfuse.json").read_text())
    assert {(t["target"], t["source"]) for t in config["fusion"]["translators"]} == {(A, B), (B, A)}
    # a model saved before ``impute`` existed (no such parameter) loads without translators
    plain = _property_model(model="rf", uncertainty="none", impute="none").fit_blocks(blocks, y)
    plain.save(tmp_path / "old")
    old = json.loads((tmp_path / "old" / "matfuse.json").read_text())
    del old["params"]["impute"]
    (tmp_path / "old" / "matfuse.json").write_text(json.dumps(old))
    from matfuse.models.manifest import write_manifest

    write_manifest(tmp_path / "old", "matfuse.PropertyModel")
    again = PropertyModel.load(tmp_path / "old")
    assert again.impute == "none" and not again.imputes
    np.testing.assert_array_equal(again.predict_blocks(test), plain.predict_blocks(test))
