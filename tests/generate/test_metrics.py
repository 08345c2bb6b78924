"""Generation metrics: MOSES sanity checks and the PMO top-10 AUC."""

from __future__ import annotations

import pytest
from rdkit import DataStructs

from matfuse.chem.similarity import morgan_bitvect
from matfuse.generate.metrics import (
    MosesReference,
    cosine_similarity,
    fragment_counts,
    internal_diversity,
    moses_metrics,
    novelty,
    passes_moses_filters,
    scaffold_counts,
    top_k_auc,
    top_k_mean,
    unique_at,
    validity,
)


def test_validity_of_a_known_list():
    assert validity(["CCO", "c1ccccc1", "C1CC", "xyz", None]) == pytest.approx(2 / 5)
    assert validity([]) == 0.0


def test_unique_and_novelty():
    assert unique_at(["CCO", "CCO", "CCN", "CCC"], k=2) == 0.5
    assert unique_at(["CCO", "CCO", "CCN", "CCC"]) == 0.75
    assert novelty(["CCO", "CCO", "CCN"], {"CCO"}) == 0.5
    assert novelty(["CCO"], ["CCO"]) == 0.0


def test_internal_diversity():
    fps = [morgan_bitvect("CC(=O)Oc1ccccc1C(=O)O", 2, 1024)] * 5
    assert internal_diversity(fps) == pytest.approx(0.0)
    a, b = morgan_bitvect("CCO", 2, 1024), morgan_bitvect("c1ccccc1", 2, 1024)
    t = DataStructs.TanimotoSimilarity(a, b)
    # all ordered pairs incl. self-pairs: mean = (1 + t + t + 1) / 4
    assert internal_diversity([a, b]) == pytest.approx(1 - (2 + 2 * t) / 4)
    assert internal_diversity([a, b], p=2) == pytest.approx(1 - ((2 + 2 * t**2) / 4) ** 0.5)


def test_fragment_and_scaffold_similarity():
    mols = ["CC(=O)Nc1ccc(O)cc1", "c1ccc2ccccc2c1", "c1ccc(-c2ccccn2)cc1"]
    assert cosine_similarity(fragment_counts(mols), fragment_counts(mols)) == pytest.approx(1.0)
    scaf = scaffold_counts(mols)  # only scaffolds with two or more rings count (MOSES)
    assert set(scaf) == {"c1ccc2ccccc2c1", "c1ccc(-c2ccccn2)cc1"}


def test_moses_filters():
    assert passes_moses_filters("CC(=O)Nc1ccc(O)cc1")
    assert not passes_moses_filters("C[N+](C)(C)C")  # charged
    assert not passes_moses_filters("C1CCCCCCC1")  # 8-membered ring
    assert not passes_moses_filters("CCP(C)C")  # P is not an allowed atom
    assert not passes_moses_filters("CCCCl")  # MCF4: primary alkyl halide
    assert not passes_moses_filters("S1C(=S)NC(=O)C1=Cc1ccccc1")  # PAINS ene_rhod
    assert not passes_moses_filters("not a molecule")


def test_moses_metrics_of_the_reference_itself():
    ref = ["CC(=O)Nc1ccc(O)cc1", "c1ccc2ccccc2c1", "c1ccc(-c2ccccn2)cc1", "CCOC(=O)c1ccccc1"]
    out = moses_metrics(
        ref + ["bad"], set(ref), {"Test": MosesReference(ref, with_fcd=False)}, with_fcd=False
    )
    assert out["valid"] == pytest.approx(0.8)
    assert out["SNN/Test"] == pytest.approx(1.0)
    assert out["Frag/Test"] == pytest.approx(1.0)
    assert out["Novelty"] == 0.0


def test_top_k_mean_and_auc():
    assert top_k_mean([0.1, 0.9, 0.5], k=2) == pytest.approx(0.7)
    assert top_k_mean([0.3], k=10) == pytest.approx(0.3)
    # constant 1.0: the first 100 calls ramp from 0 (PMO's trapezoid), then flat
    assert top_k_auc([1.0] * 1000, budget=1000) == pytest.approx(0.95)
    # stopping early keeps the last value for the calls not made
    assert top_k_auc([1.0] * 500, budget=1000) == pytest.approx(0.95)
    assert top_k_auc([], budget=10) == 0.0
    rising = [i / 1000 for i in range(1000)]
    assert top_k_auc(rising, 1000) < top_k_auc(sorted(rising, reverse=True), 1000)
