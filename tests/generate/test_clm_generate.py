"""The language model in generation: the ``clm_loglik`` objective term and the SMC ``clm`` prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matfuse.foundation.clm import fit_clm, save_clm
from matfuse.foundation.tokenizers import canonical_smiles
from matfuse.generate import generate
from matfuse.generate.objectives import Objective, SpecError, make_term, term_choices

torch.set_num_threads(1)

SERIES = [f"{a}c1ccc({b})cc1" for a in ("C", "O", "N", "Cl", "F") for b in ("C", "O", "CC", "N")]
SERIES += ["C" * k + "O" for k in range(1, 7)] + ["C" * k + "N" for k in range(1, 7)]


@pytest.fixture(scope="module")
def lm():
    return fit_clm(SERIES, steps=120, batch_size=32, seed=0, d_model=48, n_layers=1, lr=1e-2)


@pytest.fixture(scope="module")
def lm_dir(lm, tmp_path_factory):
    path = tmp_path_factory.mktemp("clm") / "lm"
    save_clm(lm, path)
    return str(path)


def test_clm_loglik_is_a_registered_term_that_prefers_in_distribution_molecules(lm, lm_dir):
    assert "clm_loglik" in term_choices()
    objective = Objective.from_spec(
        {"terms": [{"property": "clm_loglik", "model": lm_dir, "scale": [-40, -5]}]}
    )
    table = objective.evaluate(["Cc1ccc(O)cc1", "O=S(=O)(F)C#CC1CC1", "not a molecule"])
    # the raw value is the exact log-likelihood of the canonical SMILES
    expected = lm.log_likelihood([canonical_smiles("Cc1ccc(O)cc1")]).item()
    assert table["clm_loglik"][0] == pytest.approx(expected, abs=1e-4)
    assert table["clm_loglik"][0] > table["clm_loglik"][1]
    assert table["score"][0] > table["score"][1]
    assert table["score"][2] == 0 and table["error"][2] == "invalid molecule"


def test_clm_loglik_per_token_and_bad_specs(lm_dir):
    term = make_term({"property": "clm_loglik", "model": lm_dir, "per_token": True})
    from rdkit import Chem

    res = term.evaluate([Chem.MolFromSmiles("CCCO")])
    assert -5 < res.raw[0] < 0 and 0 <= res.desirability[0] <= 1
    with pytest.raises(SpecError, match="per_token"):
        make_term({"property": "clm_loglik", "model": lm_dir, "per_token": "yes"})
    with pytest.raises(SpecError, match="cannot load"):
        make_term({"property": "clm_loglik", "model": "/no/such/model"})


def test_smc_with_the_clm_prior_is_seeded_and_exactly_budgeted(lm):
    qed = {"terms": [{"property": "qed"}]}
    kw = dict(strategy="smc", prior="clm", clm=lm, budget=16, n_particles=8)
    a = generate(qed, seed=3, **kw)
    b = generate(qed, seed=3, **kw)
    c = generate(qed, seed=4, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["smiles"]) != list(c["smiles"])
    assert a.attrs["n_calls"] == 16
    # a learned prior proposes mostly valid molecules
    assert a.attrs["n_invalid"] <= 8
    assert np.isfinite(a["score"]).all()


def test_smc_refuses_an_unknown_prior():
    with pytest.raises(ValueError, match="clm"):
        generate({"terms": [{"property": "qed"}]}, strategy="smc", prior="gpt", budget=5)
