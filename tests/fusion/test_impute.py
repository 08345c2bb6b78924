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
