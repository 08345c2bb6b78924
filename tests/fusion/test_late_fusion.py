import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from matfuse.fusion import LateFusion, compute_blocks


def test_blocks_are_scaled_weighted_and_concatenated(smiles):
    fusion = LateFusion(["maccs", "rdkit2d"])
    X = fusion.fit_transform(smiles)
    assert X.shape == (len(smiles), 167 + 217)
    assert fusion.block_slices_ == {"maccs": (0, 167), "rdkit2d": (167, 384)}
    # equal block weighting: each block's total variance is at most 1 (constant columns add 0)
    for lo, hi in fusion.block_slices_.values():
        total = np.nansum(np.nanvar(X[:, lo:hi], axis=0))
        assert 0.5 < total <= 1.0 + 1e-5


def test_invalid_rows_are_nan_per_block_and_others_survive(smiles):
    fusion = LateFusion(["ecfp", "maccs"]).fit(smiles)
    X = fusion.transform(["CCO", "C1CC(", "c1ccccc1"])
    assert np.isnan(X[1]).all()
    assert np.isfinite(X[[0, 2]]).all()
    blocks = {k: b.values for k, b in compute_blocks(["ecfp", "maccs"], ["CCO", "x("]).items()}
    blocks["maccs"][0] = np.nan  # pretend only the MACCS block failed for row 0
    fused = fusion.transform_blocks(blocks)
    assert np.isnan(fused[0, 2048:]).all() and np.isfinite(fused[0, :2048]).all()
    assert fusion.block_validity(blocks)["ecfp"].tolist() == [True, False]


def test_reduction_and_state_round_trip(tmp_path, smiles):
    fusion = LateFusion(["ecfp-count", "maccs"], reduce={"ecfp-count": 5}).fit(smiles)
    X = fusion.transform(smiles)
    assert X.shape == (len(smiles), 5 + 167)
    save_file(fusion.state_tensors(), str(tmp_path / "f.safetensors"))
    fresh = LateFusion(["ecfp-count", "maccs"], reduce={"ecfp-count": 5})
    fresh.load_state_tensors(load_file(str(tmp_path / "f.safetensors")))
    np.testing.assert_array_equal(fresh.transform(smiles), X)
    assert list(fresh.get_feature_names_out())[:2] == ["ecfp-count__0", "ecfp-count__1"]


def test_missing_block_is_a_clear_error(smiles):
    fusion = LateFusion(["maccs"]).fit(smiles)
    with pytest.raises(KeyError, match="blocks missing"):
        fusion.transform_blocks({})
