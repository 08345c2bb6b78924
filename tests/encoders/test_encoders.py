import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

import matfuse
from matfuse.encoders import get_encoder, list_encoders, parse_encoder_spec

FAST = [
    "ecfp",
    "ecfp-count",
    "fcfp",
    "fcfp-count",
    "maccs",
    "atompair",
    "torsion",
    "rdkit2d",
    "rdkit2d-fast",
]


def test_registry_lists_every_encoder_with_metadata():
    specs = {s.name: s for s in list_encoders()}
    for name in [*FAST, "mordred", "chemnet"]:
        assert name in specs
        assert specs[name].modality == "smiles"
        assert specs[name].dim > 0
    assert specs["chemnet"].pretrained and not specs["ecfp"].pretrained
    assert specs["maccs"].dim == 167 and specs["chemnet"].dim == 512


def test_spec_strings_carry_parameters():
    assert parse_encoder_spec("ecfp-count:radius=3:n_bits=1024") == (
        "ecfp-count",
        {"radius": 3, "n_bits": 1024},
    )
    enc = get_encoder("ecfp-count:radius=3:n_bits=1024")
    assert enc.radius == 3 and enc.counts and enc.dim == 1024
    with pytest.raises(KeyError, match="unknown encoder"):
        get_encoder("nope")
    with pytest.raises(ValueError, match="key=value"):
        get_encoder("ecfp:radius")


@pytest.mark.parametrize("name", FAST)
def test_invalid_rows_are_nan_and_valid_rows_finite(name, smiles):
    batch = [*smiles[:5], "C1CC(", "", *smiles[5:8]]
    block = get_encoder(name).encode_block(batch)
    assert block.values.shape == (len(batch), get_encoder(name).dim)
    assert block.valid.tolist() == [True] * 5 + [False, False] + [True] * 3
    assert np.isnan(block.values[5]).all() and np.isnan(block.values[6]).all()
    assert block.errors[5].startswith("unparsable")
    if not name.startswith("rdkit2d"):  # a few RDKit descriptors can be NaN for odd molecules
        assert np.isfinite(block.values[block.valid]).all()


def test_fingerprint_semantics():
    X = get_encoder("ecfp").transform(["CCO", "OCC", "c1ccccc1"])
    assert set(np.unique(X)) <= {0.0, 1.0}
    np.testing.assert_array_equal(X[0], X[1])  # same molecule, different drawing
    counts = get_encoder("ecfp-count").transform(["CCCCCCCC"])
    assert counts.max() > 1  # repeated CH2 environments are counted
    fc = get_encoder("fcfp").transform(["c1ccccc1O"])
    ec = get_encoder("ecfp").transform(["c1ccccc1O"])
    assert not np.array_equal(fc, ec)


def test_rdkit_descriptors_match_rdkit():
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    enc = get_encoder("rdkit2d")
    names = list(enc.get_feature_names_out())
    X = enc.transform(["CC(=O)Nc1ccc(O)cc1"])
    mw = X[0, names.index("rdkit2d_MolWt")]
    assert mw == pytest.approx(
        Descriptors.MolWt(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1")), rel=1e-5
    )


def test_fast_descriptors_are_rdkit2d_columns(smiles):
    from rdkit.Chem import Descriptors

    from matfuse.encoders.descriptors import FAST_DROPPED

    full, fast = get_encoder("rdkit2d", cache=False), get_encoder("rdkit2d-fast", cache=False)
    all_names = [n for n, _ in Descriptors._descList]
    kept = [n for n in all_names if n not in FAST_DROPPED]
    assert fast.dim == len(kept) == len(all_names) - len(FAST_DROPPED) and fast.dim > 150
    assert {"qed", "SPS", "Ipc", "BCUT2D_MWHI"} <= FAST_DROPPED <= set(all_names)
    names = list(fast.get_feature_names_out())
    assert names == [f"rdkit2d-fast_{n}" for n in kept]
    # odd molecules too: a charged salt, a lone ion, one heavy atom, a large ring system
    batch = [*smiles, "[Na+].[Cl-]", "[NH4+]", "C", "c1ccc2cc3ccccc3cc2c1", "CC(=O)[O-].[K+]"]
    A, B = full.transform(batch), fast.transform(batch)
    columns = [all_names.index(n) for n in kept]
    np.testing.assert_array_equal(A[:, columns], B)  # bit for bit, NaNs where rdkit2d's
    for summary in ("MaxEStateIndex", "MinEStateIndex", "MaxAbsEStateIndex", "MinAbsEStateIndex"):
        assert np.isfinite(B[:, kept.index(summary)]).all()


def test_fast_descriptors_flag_a_bad_row_and_keep_the_others():
    block = get_encoder("rdkit2d-fast").encode_block(["CCO", "C1CC(", "c1ccccc1O"])
    assert block.valid.tolist() == [True, False, True]
    assert block.errors[1].startswith("unparsable") and np.isnan(block.values[1]).all()
    names = list(get_encoder("rdkit2d-fast").get_feature_names_out())
    mw = block.values[:, names.index("rdkit2d-fast_MolWt")]
    assert mw[0] == pytest.approx(46.069, abs=1e-3) and mw[2] == pytest.approx(94.113, abs=1e-3)


def test_batch_deduplication_and_cache_give_identical_rows(smiles):
    enc = get_encoder("rdkit2d")
    X1 = enc.transform(smiles[:6])
    X2 = enc.transform([*smiles[:6], smiles[0]])  # served from the cache
    np.testing.assert_array_equal(X1, X2[:6])
    np.testing.assert_array_equal(X2[0], X2[6])
    assert len(enc._feature_cache) == 6


def test_encoders_are_sklearn_transformers(smiles):
    enc = get_encoder("maccs")
    assert clone(enc).get_params() == enc.get_params()
    y = np.arange(len(smiles), dtype=float)
    pipe = make_pipeline(get_encoder("ecfp-count:n_bits=256"), Ridge()).fit(smiles, y)
    assert pipe.predict(smiles[:3]).shape == (3,)


def test_mordred_block():
    block = get_encoder("mordred").encode_block(["CCO", "bad("])
    assert block.values.shape == (2, get_encoder("mordred").dim)
    assert np.isfinite(block.values[0]).mean() > 0.5
    assert not block.valid[1]


def test_chemnet_is_a_pretrained_deterministic_embedding(smiles):
    enc = matfuse.load_encoder("chemnet")
    X = enc.transform(smiles[:4])
    assert X.shape == (4, 512) and np.isfinite(X).all()
    assert np.abs(X).sum() > 0
    X2 = matfuse.get_representation("chemnet", smiles[:4])
    np.testing.assert_allclose(X, X2, rtol=1e-5, atol=1e-6)
    # distinct molecules get distinct embeddings
    assert not np.allclose(X[0], X[3])
