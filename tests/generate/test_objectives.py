"""Objective maths: p(Y in U), modifiers, aggregation, spec parsing and model terms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matfuse.generate.modifiers import (
    ClippedScoreModifier,
    MaxGaussianModifier,
    MinGaussianModifier,
    WindowModifier,
)
from matfuse.generate.objectives import (
    Objective,
    SpecError,
    aggregate_scores,
    in_window_probability,
    load_objective,
    pareto_ranks,
)


def test_window_probability_matches_normal_cdf():
    p = in_window_probability(np.array([0.0, 0.0, 1.0]), np.array([1.0, 1.0, 2.0]), -1.96, 1.96)
    assert p[0] == pytest.approx(0.95, abs=1e-3)
    # one-sided threshold at the mean: exactly one half
    assert in_window_probability(np.array([2.0]), np.array([0.5]), 2.0, None)[0] == 0.5
    # mean 1, std 2, window [-1.96, 1.96]: Phi(0.48) - Phi(-1.48)
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    assert p[2] == pytest.approx(phi(0.48) - phi(-1.48), abs=1e-9)


def test_window_probability_without_uncertainty_is_an_indicator():
    p = in_window_probability(np.array([0.0, 5.0, np.nan]), np.array([0.0, np.nan, 1.0]), -1, 1)
    assert p[0] == 1.0 and p[1] == 0.0 and np.isnan(p[2])


def test_modifiers_by_hand():
    assert ClippedScoreModifier(upper_x=0.75)(0.375) == pytest.approx(0.5)
    assert ClippedScoreModifier(upper_x=0.75)(0.9) == 1.0
    assert MinGaussianModifier(1.0, 1.0)(0.0) == 1.0
    assert MinGaussianModifier(1.0, 1.0)(3.0) == pytest.approx(math.exp(-2.0))
    assert MaxGaussianModifier(100, 10)(90) == pytest.approx(math.exp(-0.5))
    assert WindowModifier(0.6, None)(np.array([0.59, 0.6])).tolist() == [0.0, 1.0]
    assert WindowModifier(1.0, 2.0, sigma=1.0)(3.0) == pytest.approx(math.exp(-0.5))


def test_aggregations():
    d = np.array([[0.25, 1.0], [0.0, 1.0]])
    w = np.array([1.0, 1.0])
    assert aggregate_scores(d, w, "geometric").tolist() == pytest.approx([0.5, 0.0])
    assert aggregate_scores(d, w, "product").tolist() == pytest.approx([0.25, 0.0])
    assert aggregate_scores(d, w, "weighted-sum").tolist() == pytest.approx([0.625, 0.5])
    assert aggregate_scores(d, np.array([3.0, 1.0]), "weighted-sum")[0] == pytest.approx(0.4375)


def test_pareto_ranks():
    d = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4], [0.1, 0.1]])
    assert pareto_ranks(d).tolist() == [1, 1, 1, 2, 3]


def test_objective_table_keeps_invalid_rows():
    obj = Objective.from_spec(
        {"terms": [{"property": "qed"}, {"property": "logp", "min": 0, "max": 3}]}
    )
    table = obj.evaluate(["CCO", "not a smiles", "c1ccccc1O"])
    assert len(table) == 3
    assert table.loc[1, "score"] == 0.0 and table.loc[1, "error"] == "invalid molecule"
    assert table.loc[0, "qed_d"] == pytest.approx(table.loc[0, "qed"])
    assert {"qed", "qed_d", "logp", "logp_d", "score"} <= set(table.columns)


def test_terms_substructure_pains_similarity_sa():
    obj = Objective.from_spec(
        {
            "aggregate": "weighted-sum",
            "terms": [
                {"property": "substructure", "smarts": "c1ccccc1", "exclude": False},
                {"property": "pains"},
                {"property": "similarity", "smiles": "c1ccccc1O"},
                {"property": "sa", "goal": "minimize"},
            ],
        }
    )
    t = obj.evaluate(["c1ccccc1O", "CCO", "S1C(=S)NC(=O)C1=Cc1ccccc1"])
    assert t["substructure_d"].tolist() == [1.0, 0.0, 1.0]
    assert t["pains_d"].tolist() == [1.0, 1.0, 0.0]  # the arylidene rhodanine is PAINS
    assert t.loc[0, "similarity"] == 1.0
    assert 1.0 <= t.loc[0, "sa"] <= 10.0
    assert t.loc[0, "sa_d"] == pytest.approx((10.0 - t.loc[0, "sa"]) / 9.0)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"terms": []}, "non-empty"),
        ({"terms": [{"property": "nope"}]}, "property must be one of"),
        ({"terms": [{"property": "qed", "bogus": 1}]}, "unknown key"),
        ({"terms": [{"property": "logp", "min": 3, "max": 1}]}, "above max"),
        ({"terms": [{"property": "logp", "goal": "maximize"}], "aggregate": "max"}, "aggregate"),
        ({"terms": [{"property": "hbd", "goal": "maximize"}]}, "scale"),
        ({"terms": [{"property": "similarity", "smiles": "C1CC"}]}, "not valid"),
        ({"terms": [{"property": "substructure", "smarts": "[[["}]}, "SMARTS"),
        ({"terms": [{"property": "qed"}, {"property": "qed"}]}, "unique"),
        ({"terms": [{"property": "model", "path": "/nonexistent/model"}]}, "cannot load"),
        ({"terms": [{"property": "qed", "weight": "heavy"}]}, "finite number"),
    ],
)
def test_bad_specs_give_clear_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        Objective.from_spec(spec)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.floats(-3, 3), max_size=3),
)
_term = st.dictionaries(
    st.sampled_from(
        [
            "property",
            "name",
            "weight",
            "goal",
            "min",
            "max",
            "value",
            "sigma",
            "scale",
            "smiles",
            "smarts",
            "exclude",
            "junk",
        ]
    ),
    _values,
    max_size=6,
).map(lambda d: {**d, "property": d.get("property", "qed")})
_prop_term = st.builds(
    lambda base, prop: {**base, "property": prop},
    _term,
    st.sampled_from(["qed", "logp", "sa", "tpsa", "similarity", "substructure", "pains", "x"]),
)


@settings(max_examples=150, deadline=None)
@given(terms=st.lists(_prop_term, max_size=3), aggregate=st.one_of(st.none(), st.text(max_size=5)))
def test_spec_parser_never_crashes(terms, aggregate):
    spec = {"terms": terms} if aggregate is None else {"terms": terms, "aggregate": aggregate}
    try:
        obj = Objective.from_spec(spec)
    except SpecError:
        return
    scores = obj.score(["CCO", "xx"])
    assert scores[1] == 0.0 and 0.0 <= scores[0] <= 1.0


def test_spec_file_yaml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("terms:\n  - property: qed\n")
    (tmp_path / "b.json").write_text('{"terms": [{"property": "qed"}]}')
    (tmp_path / "c.yaml").write_text("terms: [\n")
    assert load_objective(tmp_path / "a.yaml").terms[0].name == "qed"
    assert load_objective(tmp_path / "b.json").aggregate == "geometric"
    with pytest.raises(SpecError, match="cannot parse"):
        load_objective(tmp_path / "c.yaml")
    with pytest.raises(SpecError, match="does not exist"):
        load_objective(tmp_path / "missing.yaml")


def test_model_term_is_window_probability_of_the_model(tmp_path, smiles):
    from conftest_helpers import logp
    from matfuse.pipeline import PropertyModel

    model = PropertyModel(encoders=["ecfp"], model="rf", random_state=0)
    model.fit(smiles, logp(smiles), target_names=["logp"])
    model.save(tmp_path / "m")
    (tmp_path / "spec.yaml").write_text(
        "terms:\n  - property: model\n    path: m\n    min: 1.0\n    max: 2.0\n"
    )
    obj = load_objective(tmp_path / "spec.yaml")  # path resolved relative to the spec file
    queries = ["CCCCO", "c1ccccc1C", "bad"]
    table = obj.evaluate(queries)
    res = model.predict_with_uncertainty(model.blocks(queries[:2]))
    mean, std = res["pred"][:, 0], res["std"][:, 0]
    assert np.isfinite(std).all() and (std > 0).all()
    expected = in_window_probability(mean, std, 1.0, 2.0)
    assert table["logp_d"][:2].to_numpy() == pytest.approx(expected)
    assert table["logp"][:2].to_numpy() == pytest.approx(mean)
    assert table["logp_std"][:2].to_numpy() == pytest.approx(std)
    assert table.loc[2, "score"] == 0.0

    # a regression target can only be maximised along an explicit scale
    with pytest.raises(SpecError, match="needs `scale"):
        Objective.from_spec(
            {"terms": [{"property": "model", "path": str(tmp_path / "m"), "goal": "maximize"}]}
        )
    ramp = Objective.from_spec(
        {"terms": [{"property": "model", "path": str(tmp_path / "m"), "scale": [0, 4]}]}
    ).evaluate(queries[:2])
    assert ramp["logp_d"].to_numpy() == pytest.approx(np.clip(mean / 4, 0, 1))
