"""lm-ga: the graph GA whose children a language model filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matfuse.foundation.clm import fit_clm
from matfuse.generate import STRATEGIES, generate
from matfuse.generate.strategies import BudgetedOracle
from matfuse.generate.strategies.lm_ga import LanguageModelGA

QED = {"terms": [{"property": "qed"}]}
CORPUS = [
    "CC(=O)Nc1ccc(O)cc1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "c1ccc2[nH]ccc2c1",
    "O=C(O)c1ccccc1O",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "CCOC(=O)c1ccccc1",
    "Cc1ccccc1NC(=O)CN(CC)CC",
    "CC(C)NCC(O)COc1cccc2ccccc12",
    "Clc1ccc(cc1)C(=O)N",
    "Oc1ccc(cc1)-c1ccccc1",
    "CS(=O)(=O)c1ccc(N)cc1",
    "FC(F)(F)c1ccc(N)cc1",
]


class ShortIsLikely:
    """A stand-in prior: log p = -2 per token, so per-token scores tie and totals favour short
    strings; ``bias`` adds a bonus to strings containing a substring."""

    def __init__(self, bias: str = "") -> None:
        self.bias = bias

    def token_ids(self, s: str) -> list[int]:
        return [0] * (len(s) + 2)

    def log_likelihood(self, smiles: list[str]) -> torch.Tensor:
        return torch.tensor(
            [-2.0 * (len(s) + 1) + (50.0 if self.bias in s else 0.0) for s in smiles]
        )


@pytest.fixture(scope="module")
def prior():
    torch.set_num_threads(1)
    return fit_clm(CORPUS * 5, steps=40, seed=0, d_model=32, n_layers=1, batch_size=32)


def test_registered():
    assert STRATEGIES["lm-ga"] is LanguageModelGA
    assert "lm-ga" in STRATEGIES.names("language-model")


def test_same_seed_same_table_and_exact_budget(prior):
    kw = dict(strategy="lm-ga", budget=30, seed=2, corpus=CORPUS, prior=prior)
    kw.update(population_size=10, offspring_size=6)
    a, b = generate(QED, **kw), generate(QED, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 30 and a.attrs["n_calls"] == 30 and a["smiles"].is_unique


def test_children_are_the_most_likely_per_token():
    from rdkit import Chem

    mols = [Chem.MolFromSmiles(s) for s in CORPUS]
    weights = np.ones(len(mols))
    stand_in = ShortIsLikely(bias="N")
    ga = LanguageModelGA(seed=0, prior=stand_in, offspring_size=5, proposal_factor=4)
    children = ga._reproduce(mols, weights)
    # the same seed proposes the same children through the plain GA's operators
    twin = LanguageModelGA(seed=0, prior=stand_in, offspring_size=5, proposal_factor=4)
    proposals: list[str] = []
    for _ in range(4):
        for c in super(LanguageModelGA, twin)._reproduce(mols, weights):
            if c and c not in proposals:
                proposals.append(c)
    assert len(proposals) > 5
    # per-token log p of the stand-in: -2 + 50 / (len + 1) with a nitrogen, else -2
    per_token = [-2.0 + (50.0 / (len(c) + 1) if "N" in c else 0.0) for c in proposals]
    order = sorted(range(len(proposals)), key=lambda i: (-per_token[i], i))[:5]
    assert children == [proposals[i] for i in sorted(order)]


def test_only_kept_children_reach_the_oracle():
    batches: list[int] = []

    def score(smiles):
        batches.append(len(smiles))
        return np.full(len(smiles), 0.5)

    ga = LanguageModelGA(
        seed=1, corpus=CORPUS, prior=ShortIsLikely(), population_size=8, offspring_size=4
    )
    ga.run(BudgetedOracle(score, budget=20))
    assert batches[0] == 8 and len(batches) > 2  # the starting molecules, then generations
    assert max(batches[1:]) <= 4  # 12 proposals per generation, 4 kept
    with pytest.raises(ValueError, match="proposal_factor"):
        LanguageModelGA(prior=ShortIsLikely(), proposal_factor=0)
