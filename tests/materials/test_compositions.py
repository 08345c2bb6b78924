import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pymatgen")

from pymatgen.core import Composition, Element, Species  # noqa: E402

from matfuse.materials.compositions import (  # noqa: E402
    composition_key,
    parse_compositions,
    to_composition,
)


def test_valid_formulas_give_reduced_formulas():
    p = parse_compositions(["NaCl", "Fe2O3", "(Fe2O3)2", "Cd1 Cu1 N3", "Fe0.7C0.3", "D2O"])
    assert p.formulas == ["NaCl", "Fe2O3", "Fe2O3", "CdCuN3", "Fe0.7C0.3", "H2O"]
    assert p.valid.all() and p.n_invalid == 0 and len(p) == 6


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty formula"),
        ("   ", "empty formula"),
        (None, "empty formula"),
        (float("nan"), "empty formula"),
        ("hello", "unparsable formula"),
        ("Fe2O3)", "unparsable formula"),
        ("Fe2+", "unparsable formula"),
        ("123", "unparsable formula"),
        ("Xx2O", "unknown element(s): Xx"),
        ("X", "unknown element(s): X"),
        ("Fe0O", "non-positive amount for element(s): Fe"),
        ("Fe1e-12O", "non-positive amount for element(s): Fe"),
        ("Ti0", "non-positive amount for element(s): Ti"),
        ("Fe-1O", "non-positive amount"),
        ("Fe 1e400", "non-finite amount"),
        (3, "not a formula (int)"),
    ],
)
def test_bad_formulas_are_flagged_with_a_reason(text, reason):
    p = parse_compositions(["NaCl", text, "MgO"])
    assert p.formulas[0] == "NaCl" and p.formulas[2] == "MgO"
    assert p.compositions[1] is None and p.formulas[1] is None
    assert p.errors[1].startswith(reason)
    assert p.valid.tolist() == [True, False, True]


def test_objects_structures_and_oxidation_states(nacl):
    ox = Composition({Species("Fe", 3): 2, Species("O", -2): 3})
    p = parse_compositions([Composition("Fe2O3"), ox, nacl, {"Li": 1, "F": 1}])
    assert p.formulas == ["Fe2O3", "Fe2O3", "NaCl", "LiF"]
    assert all(isinstance(el, Element) for el in p.compositions[1])  # states dropped


def test_allowed_elements_and_subset():
    p = parse_compositions(["NaCl", "Fe2O3", "LiF"], allowed_elements=["Na", "Cl", "Li", "F"])
    assert p.errors[1] == "disallowed element(s): Fe, O"
    sub = p.subset([2, 1])
    assert sub.formulas == ["LiF", None] and sub.inputs == ["LiF", "Fe2O3"]
    assert sub.valid.tolist() == [True, False]


def test_a_lone_formula_is_one_row():
    assert parse_compositions("NaCl").formulas == ["NaCl"]


def test_composition_key_depends_on_fractions_only():
    assert composition_key(Composition("Fe2O3")) == composition_key(Composition("Fe4O6"))
    assert composition_key(Composition("Fe2O3")) != composition_key(Composition("Fe3O4"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=30), st.none(), st.floats()), max_size=8))
def test_fuzz_random_input_never_raises_and_keeps_rows(items):
    p = parse_compositions(items)
    assert len(p) == len(items) == len(p.formulas) == len(p.compositions)
    for comp, formula, err in zip(p.compositions, p.formulas, p.errors, strict=True):
        assert (comp is None) == (formula is None) == (err is not None)
        if comp is not None:
            assert comp.num_atoms > 0 and all(a > 0 for a in comp.values())


_SYMBOLS = [Element.from_Z(z).symbol for z in range(1, 95)]


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(_SYMBOLS),
        st.floats(min_value=0.01, max_value=50, allow_nan=False),
        min_size=1,
        max_size=5,
    )
)
def test_fuzz_written_formulas_round_trip(amounts):
    text = "".join(f"{el}{amt:.3f}" for el, amt in amounts.items())
    comp, err = to_composition(text)
    assert err is None
    frac = comp.fractional_composition
    total = sum(round(a, 3) for a in amounts.values())
    for el, amt in amounts.items():
        assert np.isclose(frac[el], round(amt, 3) / total, atol=1e-6)
