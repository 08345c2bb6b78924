import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

import matfuse
from matfuse.encoders import get_encoder, list_encoders, parse_encoder_spec

FAST = ["ecfp", "ecfp-count", "fcfp", "fcfp-count", "maccs", "atompair", "torsion", "rdkit2d"]


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
    if name != "rdkit2d":  # a few RDKit descriptors can be NaN for odd molecules
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
