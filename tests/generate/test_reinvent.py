"""REINVENT and Augmented Memory on a tiny language model fitted in the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from matfuse.foundation.clm import fit_clm
from matfuse.generate import STRATEGIES, generate
from matfuse.generate.strategies import BudgetedOracle
from matfuse.generate.strategies.genetic_lm import GeneticLanguageModel
from matfuse.generate.strategies.reinvent import (
    AugmentedMemory,
    Reinvent,
    ScaffoldDiversityFilter,
    randomized_smiles,
)

QED = {"terms": [{"property": "qed"}]}
CORPUS = [
    "CCO",
    "CCN",
    "CCC",
    "CCCO",
    "CCCN",
    "CC(C)O",
    "CC(=O)O",
    "CC(=O)N",
    "c1ccccc1",
    "c1ccccc1O",
    "c1ccccc1N",
    "c1ccccc1C",
    "Cc1ccccc1O",
    "OCc1ccccc1",
    "c1ccncc1",
    "C1CCCCC1",
    "C1CCNCC1",
    "CC1CCCCC1",
    "COc1ccccc1",
    "CC(C)Cc1ccccc1",
]
TINY = {"batch_size": 8, "max_length": 40}


@pytest.fixture(scope="module")
def prior():
    torch.set_num_threads(1)
    return fit_clm(CORPUS * 5, steps=60, seed=0, d_model=32, n_layers=1, batch_size=32)


def test_registered_with_their_tags():
    assert STRATEGIES["reinvent"] is Reinvent
    assert STRATEGIES["augmented-memory"] is AugmentedMemory
    assert {"reinvent", "augmented-memory"} <= set(STRATEGIES.names("language-model"))


def _run(cls, prior, seed: int, budget: int = 20) -> pd.DataFrame:
    from matfuse.generate.pmo import PMO_TASKS

    oracle = BudgetedOracle(PMO_TASKS["qed"], budget=budget)
    cls(seed=seed, prior=prior, **TINY).run(oracle)
    return oracle.table()


@pytest.mark.parametrize("cls", [Reinvent, AugmentedMemory])
def test_same_seed_same_table_and_exact_budget(cls, prior):
    a, b = _run(cls, prior, seed=3), _run(cls, prior, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 20 and a["smiles"].is_unique and a["call"].tolist() == list(range(1, 21))
    assert list(_run(cls, prior, seed=4)["smiles"]) != list(a["smiles"])


def test_through_the_generate_api(prior):
    table = generate(QED, strategy="reinvent", budget=8, seed=0, prior=prior, **TINY)
    assert len(table) == 8 and table.attrs["n_calls"] == 8


def test_oracle_records_true_scores_not_filtered_rewards(prior):
    # a bucket of one closes every scaffold at once: rewards go to 0, the record must not
    task = lambda smiles: np.array([0.5 + 0.01 * len(s) for s in smiles])  # noqa: E731
    oracle = BudgetedOracle(task, budget=15)
    search = Reinvent(seed=0, prior=prior, bucket_size=1, bucket_min_score=0.0, **TINY)
    search.run(oracle)
    table = oracle.table()
    assert len(table) == 15
    assert np.allclose(table["score"], [0.5 + 0.01 * len(s) for s in table["smiles"]])
    assert len(search.filter_.buckets) > 0


def test_diversity_filter_by_hand():
    f = ScaffoldDiversityFilter(bucket_size=2, min_score=0.5)
    smiles = ["c1ccccc1O", "c1ccccc1N", "c1ccccc1C", "C1CCCCC1O", "CCO"]
    rewards, closed = f(smiles, np.array([0.9, 0.8, 0.7, 0.3, 0.6]))
    # the benzene bucket fills with phenol and aniline; toluene then earns nothing;
    # cyclohexanol scores below min_score, so it is rewarded but not put in a bucket
    assert rewards.tolist() == [0.9, 0.8, 0.0, 0.3, 0.6]
    assert closed == {"c1ccccc1"}
    assert f.buckets == {"c1ccccc1": {"c1ccccc1O", "c1ccccc1N"}, "": {"CCO"}}
    rewards, closed = f(["c1ccccc1F"], np.array([1.0]))
    assert rewards.tolist() == [0.0] and closed == set()
    # a recorded molecule sampled again earns nothing; one below min_score keeps its reward
    rewards, _ = f(["CCO", "C1CCCCC1O", "CCN"], np.array([0.6, 0.3, 0.7]))
    assert rewards.tolist() == [0.0, 0.3, 0.7]
    assert f.buckets[""] == {"CCO", "CCN"}


def test_randomized_smiles_is_the_same_molecule():
    rng = np.random.default_rng(0)
    smiles = "CC(C)Cc1ccc(cc1)C(C)C(=O)O"
    canon = Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    spelled = {randomized_smiles(smiles, rng) for _ in range(10)}
    assert len(spelled) > 1
    assert {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in spelled} == {canon}
    assert randomized_smiles("not a molecule", rng) is None


def test_reward_raises_the_agent_likelihood(prior):
    search = Reinvent(seed=0, prior=prior, sigma=50.0, learning_rate=5e-3, replay=0)
    search._setup()
    target = ["Cc1ccccc1O"]
    with torch.no_grad():
        before = float(search.agent_.log_likelihood(target)[0])
    for _ in range(5):
        search._learn(target, np.array([1.0]), set())
    with torch.no_grad():
        after = float(search.agent_.log_likelihood(target)[0])
    assert after > before + 1.0
    # the prior itself is never trained
    assert float(search.prior_.log_likelihood(target)[0]) == pytest.approx(before, abs=1e-4)


def test_augmented_memory_updates_and_purge(prior):
    search = AugmentedMemory(seed=0, prior=prior, augmentation_rounds=2)
    search._setup()
    search.memory_ = {"c1ccccc1O": 0.9, "C1CCNCC1": 0.8}
    search._learn(["c1ccccc1N", "CCO"], np.array([0.7, 0.2]), {"c1ccccc1"})
    # selective purge: the phenol left with its scaffold, the new aniline joined
    assert set(search.memory_) == {"C1CCNCC1", "c1ccccc1N", "CCO"}
    # one update on the batch and memory, then one per augmentation round
    steps = [int(s["step"]) for s in search.optimizer_.state.values()]
    assert steps and set(steps) == {3}


def test_initial_molecules_are_scored_and_remembered(prior):
    oracle = BudgetedOracle(lambda s: np.full(len(s), 0.8), budget=12)
    search = Reinvent(seed=0, prior=prior, initial=["c1ccccc1O", "CCO"], **TINY)
    search.run(oracle)
    assert oracle.table()["smiles"].tolist()[:2] == ["Oc1ccccc1", "CCO"]
    assert {"Oc1ccccc1", "CCO"} <= set(search.memory_)


def test_converged_run_stops_early_as_in_pmo(prior, monkeypatch):
    # PMO's rule, scaled down: past 10 calls, a top-5 unchanged for 3 batches ends the run
    from matfuse.generate.strategies import reinvent

    monkeypatch.setattr(reinvent, "_TOP", 5)
    monkeypatch.setattr(reinvent, "_CONVERGENCE_MIN_CALLS", 10)
    flat = lambda smiles: np.full(len(smiles), 0.5)  # noqa: E731  (top-5 never moves)
    stopped, full = BudgetedOracle(flat, budget=60), BudgetedOracle(flat, budget=60)
    Reinvent(seed=0, prior=prior, patience=3, **TINY).run(stopped)
    Reinvent(seed=0, prior=prior, patience=None, **TINY).run(full)
    assert 10 < stopped.n_calls < 60
    assert full.n_calls == 60


def test_genetic_lm_adds_ga_children_of_its_memory(prior):
    assert STRATEGIES["genetic-lm"] is GeneticLanguageModel
    search = GeneticLanguageModel(seed=0, prior=prior, offspring_size=6, **TINY)
    search._setup()
    assert search._children() == []  # nothing to breed from yet
    search.memory_ = {"c1ccccc1O": 0.9, "CC(C)Cc1ccccc1": 0.8, "OCc1ccccc1": 0.7}
    children = search._children()
    assert children and all(Chem.MolFromSmiles(c) is not None for c in children)
    # the batch is the agent's samples, then the children it did not write, each once
    search._children = lambda: ["c1ccc(O)cc1O", "c1ccc(O)cc1O", "CCCCCCCCCCO"]
    batch = search._sample()
    assert batch[-2:] == ["c1ccc(O)cc1O", "CCCCCCCCCCO"] and len(batch) == len(set(batch))


def test_genetic_lm_same_seed_same_table_exact_budget_and_learns_from_children(prior):
    kw = dict(strategy="genetic-lm", budget=40, seed=1, prior=prior, offspring_size=4, **TINY)
    a, b = generate(QED, **kw), generate(QED, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 40 and a.attrs["n_calls"] == 40
    # offspring_size=0 is reinvent, draw for draw
    from matfuse.generate.pmo import PMO_TASKS

    oracle_g = BudgetedOracle(PMO_TASKS["qed"], budget=30)
    oracle_r = BudgetedOracle(PMO_TASKS["qed"], budget=30)
    GeneticLanguageModel(seed=2, prior=prior, offspring_size=0, **TINY).run(oracle_g)
    Reinvent(seed=2, prior=prior, **TINY).run(oracle_r)
    assert oracle_g.table()["smiles"].tolist() == oracle_r.table()["smiles"].tolist()
    with pytest.raises(ValueError, match="offspring_size"):
        GeneticLanguageModel(prior=prior, offspring_size=-1)
