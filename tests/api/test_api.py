import numpy as np

import matfuse


def test_get_representation_and_load_encoder(smiles):
    X = matfuse.get_representation("maccs", [*smiles[:3], "bad("])
    assert X.shape == (4, 167) and np.isnan(X[3]).all()
    enc = matfuse.load_encoder("ecfp:n_bits=128")
    assert enc.transform(smiles[:2]).shape == (2, 128)


def test_evaluate_single_and_fused(smiles):
    from conftest_helpers import logp

    y = logp(smiles)
    single = matfuse.evaluate_single(
        "rdkit2d", smiles[:30], y[:30], smiles[30:], y[30:], model="rf"
    )
    fused = matfuse.evaluate_fused(
        ["rdkit2d", "maccs"], smiles[:30], y[:30], smiles[30:], y[30:], model="rf"
    )
    for res in (single, fused):
        m = res["targets"]["y0"]
        assert m["n"] == 10 and m["rmse"] < np.std(y[30:]) * 1.5
