"""Morgan bit vectors and nearest-neighbour Tanimoto similarity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import DataStructs

from matfuse.chem.similarity import (
    morgan_bitvect,
    morgan_bitvects,
    nearest_neighbour_similarity,
    tanimoto_to_set,
)

REFERENCE = ["CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"]


def test_bitvects_are_row_aligned_2048_bits():
    fps = morgan_bitvects(["CCO", None, "xx", "c1ccccc1"])
    assert [fp is None for fp in fps] == [False, True, True, False]
    assert fps[0].GetNumBits() == 2048
    assert morgan_bitvect("CCO") == fps[0]


def test_nearest_neighbour_similarity_values():
    queries = [REFERENCE[1], "CC(=O)Oc1ccccc1C(=O)OC", "CCCCCCCCCC", "invalid", None]
    sim = nearest_neighbour_similarity(queries, REFERENCE + [None])
    assert sim.shape == (5,)
    assert sim[0] == 1.0  # identical molecule
    ref_fps = morgan_bitvects(REFERENCE)
    expected = max(DataStructs.BulkTanimotoSimilarity(morgan_bitvect(queries[1]), ref_fps))
    assert sim[1] == pytest.approx(expected)
    assert sim[1] > 0.5 > sim[2]  # close analogue vs. unrelated alkane
    assert math.isnan(sim[3]) and math.isnan(sim[4])


def test_nearest_neighbour_similarity_without_valid_reference_is_nan():
    assert np.isnan(nearest_neighbour_similarity(["CCO"], [])).all()
    assert np.isnan(nearest_neighbour_similarity(["CCO"], ["bad"])).all()


def test_tanimoto_to_set_rejects_none():
    fps = morgan_bitvects(REFERENCE)
    assert tanimoto_to_set(fps[0], fps)[0] == 1.0
    assert tanimoto_to_set(fps[0], []).size == 0
    with pytest.raises(ValueError):
        tanimoto_to_set(fps[0], [None])
