"""Candidate generators: right composition, seeded streams, charge-balanced ion exchange."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("pyxtal")

from pymatgen.core import Composition  # noqa: E402

from matfuse.crystals.generators import (  # noqa: E402
    GENERATORS,
    check_composition,
    make_generator,
)
from matfuse.crystals.matching import mattergen_matcher  # noqa: E402
from matfuse.crystals.prototypes import PROTOTYPES, prototype_structure  # noqa: E402


def _take(generator, n):
    return list(itertools.islice(generator.candidates(), n))


def test_registry_lists_the_strategies():
    assert {"random", "substitution", "mixed"} <= set(GENERATORS.names())


def test_random_candidates_have_the_composition_and_z_range():
    cands = _take(make_generator("random", "MgO", z=(1, 3), seed=1), 4)
    assert len(cands) == 4
    for c in cands:
        comp = c.structure.composition
        assert comp.reduced_formula == "MgO"
        assert 2 <= len(c.structure) <= 6
        assert c.origin.startswith("random:")


def test_random_stream_is_a_function_of_the_seed():
    a = _take(make_generator("random", "NaCl", seed=7), 3)
    b = _take(make_generator("random", "NaCl", seed=7), 3)
    c = _take(make_generator("random", "NaCl", seed=8), 3)
    assert [x.origin for x in a] == [x.origin for x in b]
    assert all(x.structure == y.structure for x, y in zip(a, b, strict=True))
    assert any(x.structure != y.structure for x, y in zip(a, c, strict=True))


def test_formula_as_written_counts_formula_units():
    cands = _take(make_generator("random", "C8", z=(1, 1), seed=0), 2)
    assert all(len(c.structure) == 8 for c in cands)


def test_substitution_puts_kbr_on_rock_salt_first_and_charge_balanced():
    cands = list(make_generator("substitution", "KBr").candidates())
    first = cands[0]
    assert first.origin.startswith("substitution:rocksalt")
    assert first.structure.composition.reduced_formula == "KBr"
    reference = prototype_structure("rocksalt", {"Na": "K", "Cl": "Br"})
    assert mattergen_matcher().fit(first.structure, reference)
    # rescaled to the larger ions: KBr (a = 6.60 Å) is bigger than NaCl (5.64 Å)
    nacl = PROTOTYPES["rocksalt"].structure()
    assert first.structure.volume > 1.3 * nacl.volume
    guess = Composition("KBr").oxi_state_guesses()[0]
    assert sum(guess.values()) == 0 and guess["K"] == 1
    # Na<->Cl swapped on rock salt is the same structure: dropped, every candidate distinct
    assert not any(
        mattergen_matcher().fit(a.structure, b.structure)
        for a, b in itertools.combinations(cands, 2)
    )


def test_mixed_interleaves_substitution_then_random():
    origins = [c.origin for c in _take(make_generator("mixed", "NaCl", seed=0), 4)]
    assert origins[0].startswith("substitution:rocksalt")
    assert origins[1].startswith("random:")


@pytest.mark.parametrize(
    ("formula", "z", "message"),
    [
        ("Xx2O", (1, 4), "unknown element"),
        ("NaCl", (0, 2), "z range"),
        ("NaCl", (3, 2), "z range"),
        ("MgAl2O4", (8, 8), "over the limit"),
        ("Fe0.5O", (1, 2), "whole numbers"),
    ],
)
def test_bad_compositions_are_refused(formula, z, message):
    with pytest.raises(ValueError, match=message):
        check_composition(formula, z)
