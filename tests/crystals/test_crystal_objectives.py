"""Crystal objective terms against values computed by hand, and their spec errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from matfuse.crystals.objectives import (
    CRYSTAL_TERMS,
    CrystalRecord,
    load_crystal_objective,
    magnetic_moment_density,
)
from matfuse.crystals.prototypes import prototype_structure
from matfuse.generate.objectives import SpecError


def _rocksalt():
    return prototype_structure("rocksalt")  # NaCl, Fm-3m (225)


def _cscl():
    return prototype_structure("cscl")  # CsCl, Pm-3m (221)


def _one(term_spec, records, aggregate="geometric"):
    objective = load_crystal_objective({"terms": [term_spec], "aggregate": aggregate})
    return objective.evaluate(records)


def test_hull_term_default_ramp_and_window():
    records = [CrystalRecord(_rocksalt(), e) for e in (0.0, 0.25, 0.6, float("nan"))]
    ramp = _one({"property": "e_above_hull"}, records)  # minimise from 0.5 (worst) to 0
    np.testing.assert_allclose(ramp["e_above_hull_d"], [1.0, 0.5, 0.0, 0.0])
    window = _one({"property": "e_above_hull", "max": 0.1}, records)
    np.testing.assert_allclose(window["e_above_hull_d"], [1.0, 0.0, 0.0, 0.0])


def test_hhi_is_the_mass_weighted_element_index():
    from pymatgen.analysis.hhi import HHIModel

    s = _rocksalt()
    data = HHIModel().symbol_hhip_hhir  # element -> (production, reserve)
    w_na = 22.98977 / (22.98977 + 35.453)
    by_hand = w_na * data["Na"][0] + (1 - w_na) * data["Cl"][0]
    table = _one({"property": "hhi"}, [CrystalRecord(s)])
    assert table["hhi"][0] == pytest.approx(by_hand, rel=1e-3)
    assert table["hhi_d"][0] == pytest.approx(1 - by_hand / 10000, rel=1e-3)
    reserve = _one({"property": "hhi", "kind": "reserve", "max": 10000}, [CrystalRecord(s)])
    assert reserve["hhi"][0] == pytest.approx(
        w_na * data["Na"][1] + (1 - w_na) * data["Cl"][1], rel=1e-3
    )


def test_spacegroup_term_lists_systems_and_windows():
    records = [
        CrystalRecord(_rocksalt()),
        CrystalRecord(_cscl()),
        CrystalRecord(_rocksalt(), spacegroup_number=62),
    ]
    listed = _one({"property": "spacegroup", "in": [225]}, records)
    assert listed["spacegroup"].tolist() == [225, 221, 62]
    assert listed["spacegroup_d"].tolist() == [1.0, 0.0, 0.0]
    by_symbol = _one({"property": "spacegroup", "in": ["Pm-3m"]}, records)
    assert by_symbol["spacegroup_d"].tolist() == [0.0, 1.0, 0.0]
    cubic = _one({"property": "spacegroup", "crystal_system": "cubic"}, records)
    assert cubic["spacegroup_d"].tolist() == [1.0, 1.0, 0.0]  # 62 is orthorhombic
    window = _one({"property": "spacegroup", "min": 222}, records)
    assert window["spacegroup_d"].tolist() == [1.0, 0.0, 0.0]


def test_elements_term_require_exclude_within():
    nacl = CrystalRecord(_rocksalt())
    licl = CrystalRecord(prototype_structure("rocksalt", {"Na": "Li"}))
    records = [nacl, licl]
    assert _one({"property": "elements", "require": ["Li"]}, records)["elements"].tolist() == [
        0.0,
        1.0,
    ]
    assert _one({"property": "elements", "exclude": "Na"}, records)["elements"].tolist() == [
        0.0,
        1.0,
    ]
    within = _one({"property": "elements", "within": "Na-Cl-O"}, records)
    assert within["elements"].tolist() == [1.0, 0.0]


def test_magnetic_density_from_given_moments():
    s = _rocksalt()
    expected = (2.0 + 1.0) / s.volume
    assert magnetic_moment_density(s, [2.0, -1.0]) == pytest.approx(expected)
    table = _one({"property": "magnetic_density"}, [CrystalRecord(s, magmoms=[2.0, -1.0])])
    assert table["magnetic_density"][0] == pytest.approx(expected)
    assert table["magnetic_density_d"][0] == pytest.approx(min(1.0, expected / 0.1))


def test_geometric_aggregation_and_pareto_ranks():
    spec = {
        "terms": [
            {"property": "e_above_hull", "weight": 2},
            {"property": "spacegroup", "min": 1, "max": 230, "sigma": 0},
            {"property": "hhi", "name": "supply", "scale": [10000, 0]},
        ]
    }
    records = [CrystalRecord(_rocksalt(), 0.1), CrystalRecord(_rocksalt(), 0.4)]
    table = load_crystal_objective(spec).evaluate(records)
    d_supply = table["supply_d"].to_numpy()
    by_hand = [
        math.exp((2 * math.log(1 - e / 0.5) + math.log(1.0) + math.log(ds)) / 4)
        for e, ds in zip((0.1, 0.4), d_supply, strict=True)
    ]
    np.testing.assert_allclose(table["score"], by_hand)
    pareto = load_crystal_objective({**spec, "aggregate": "pareto"}).evaluate(records)
    assert pareto["pareto_rank"].tolist() == [1, 2]  # the first is better on the hull only


def test_non_records_score_zero():
    table = _one({"property": "e_above_hull"}, [CrystalRecord(_rocksalt(), 0.0), None])
    assert table["score"].tolist() == [1.0, 0.0]
    assert math.isnan(table["e_above_hull"][1])


def test_model_window_is_the_probability_inside(tmp_path):
    from matfuse.pipeline import PropertyModel

    formulas = ["NaCl", "KCl", "LiF", "NaF", "KBr", "LiCl", "NaBr", "KF", "LiBr", "RbCl"]
    y = np.arange(len(formulas), dtype=float)
    PropertyModel(encoders=["composition"], model="rf", input_type="composition").fit(
        formulas, y, target_names=["a"]
    ).save(tmp_path / "m")
    table = _one(
        {"property": "model", "path": str(tmp_path / "m"), "min": 2.0, "max": 5.0},
        [CrystalRecord(_rocksalt()), CrystalRecord(_cscl())],
    )
    model = PropertyModel.load(tmp_path / "m")
    res = model.predict_with_uncertainty(model.blocks(["NaCl", "CsCl"]))
    mu, sd = res["pred"][:, 0], res["std"][:, 0]
    assert np.isfinite(sd).all() and (sd > 0).all()
    by_hand = norm.cdf((5.0 - mu) / sd) - norm.cdf((2.0 - mu) / sd)
    np.testing.assert_allclose(table["a"], mu)
    np.testing.assert_allclose(table["a_d"], by_hand, rtol=1e-6)
    np.testing.assert_allclose(table["a_std"], sd)


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"property": "band_gap"}, "must be one of"),
        ({"property": "elements", "require": ["Xx"]}, "unknown element 'Xx'"),
        ({"property": "elements"}, "require, exclude and/or within"),
        ({"property": "elements", "require": ["Li"], "exclude": ["Li"]}, "both required"),
        ({"property": "spacegroup", "in": ["P99"]}, "unknown space group"),
        ({"property": "spacegroup"}, "give `in`"),
        ({"property": "spacegroup", "crystal_system": "cubical"}, "crystal_system"),
        ({"property": "hhi", "kind": "mining"}, "production"),
        ({"property": "e_above_hull", "colour": 1}, "unknown key"),
        ({"property": "model", "path": "/nonexistent/model"}, "cannot load model"),
    ],
)
def test_spec_errors_say_what_is_wrong(term, message):
    with pytest.raises(SpecError, match=message):
        load_crystal_objective({"terms": [term]})


def test_inline_json_and_registry():
    objective = load_crystal_objective('{"terms": [{"property": "e_above_hull"}]}')
    assert [t.name for t in objective.terms] == ["e_above_hull"]
    assert {"e_above_hull", "model", "elements", "spacegroup", "hhi", "magnetic_density"} <= set(
        CRYSTAL_TERMS.names()
    )
    with pytest.raises(SpecError, match="cannot be parsed"):
        load_crystal_objective("{not json")


@pytest.mark.slow
def test_magnetic_density_from_chgnet_moments():
    pytest.importorskip("chgnet")
    fe, nacl = prototype_structure("bcc"), _rocksalt()  # ferromagnetic Fe, non-magnetic NaCl
    table = _one({"property": "magnetic_density"}, [CrystalRecord(fe), CrystalRecord(nacl)])
    density = table["magnetic_density"].to_numpy()
    assert density[0] > 0.1  # about 2.2 mu_B per 11.8 Å^3
    assert density[1] < 0.01
