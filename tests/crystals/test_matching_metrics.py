"""Deduplication and the SUN / CSP metrics on hand-built structures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matfuse.crystals.matching import group_duplicates, rms_distance
from matfuse.crystals.metrics import match_rate, novelty, sun_rate, uniqueness
from matfuse.crystals.prototypes import prototype_structure


def _rattled(structure, amount=0.05, seed=0):
    s = structure.copy()
    rng = np.random.default_rng(seed)
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(0, amount, 3), frac_coords=False)
    return s


@pytest.fixture
def rocksalt():
    return prototype_structure("rocksalt")


@pytest.fixture
def cscl_nacl():
    return prototype_structure("cscl", {"Cs": "Na"})


def test_duplicates_are_grouped_across_cells_and_strain(rocksalt, cscl_nacl):
    strained = rocksalt.copy()
    strained.scale_lattice(rocksalt.volume * 1.1)
    groups = group_duplicates([rocksalt, cscl_nacl, rocksalt * (2, 1, 1), strained])
    assert groups == [[0, 2, 3], [1]]
    assert uniqueness([rocksalt, cscl_nacl, rocksalt * (2, 1, 1)]) == pytest.approx(2 / 3)


def test_a_structure_matches_itself_perturbed_but_not_another_prototype(rocksalt, cscl_nacl):
    conventional = prototype_structure("rocksalt", primitive=False)
    result = match_rate(
        [
            (_rattled(conventional), rocksalt),
            (cscl_nacl, rocksalt),
            ([cscl_nacl, rocksalt], rocksalt),
        ]
    )
    assert result.matched == (True, False, True)
    assert result.match_rate == pytest.approx(2 / 3)
    assert 0 < result.rms[0] < 0.1 and result.rms[2] == pytest.approx(0, abs=1e-6)
    assert math.isnan(result.rms[1])
    assert math.isnan(rms_distance(cscl_nacl, rocksalt))


def test_sun_rate_counts_stable_unique_novel(rocksalt, cscl_nacl):
    zincblende = prototype_structure("zincblende", {"Zn": "Na", "S": "Cl"})
    structures = [rocksalt, rocksalt * (1, 1, 2), cscl_nacl, zincblende]
    known = [rocksalt]
    assert novelty(structures, known).tolist() == [False, False, True, True]
    result = sun_rate(structures, [0.0, 0.0, 0.05, 0.3], known, potential="CHGNet 0.3.0")
    assert result.stable_rate == pytest.approx(0.75)
    assert result.unique_rate == pytest.approx(0.75)
    assert result.sun_rate == pytest.approx(0.25)  # only CsCl-type NaCl is all three
    assert result.potential == "CHGNet 0.3.0" and result.threshold == 0.1
    with pytest.raises(ValueError, match="hull distances"):
        sun_rate(structures, [0.0], known)
