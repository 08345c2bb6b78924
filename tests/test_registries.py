"""Every named thing lives in one Registry type: names, descriptions, tags, choices, listings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.encoders import ENCODERS
from matfuse.evaluate.splitters import SPLITTERS
from matfuse.generate import STRATEGIES, make_strategy
from matfuse.generate.objectives import TERMS, SpecError, make_term, term_choices
from matfuse.generate.properties import PROPERTIES, compute_property, register_property
from matfuse.generate.strategies import GraphGA, register_strategy
from matfuse.inputs import KINDS
from matfuse.models import get_spec, list_models, resolve_model_name
from matfuse.models.registry import MODELS
from matfuse.registry import Registry, UnknownNameError

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "objectives"
ALL = [KINDS, ENCODERS, SPLITTERS, MODELS, STRATEGIES, PROPERTIES, TERMS]


def _json(args: list[str]) -> list[dict[str, str]]:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows: list[dict[str, str]] = json.loads(res.stdout)
    return rows


def test_registry_reads_as_a_mapping_in_name_or_registration_order() -> None:
    reg: Registry[int] = Registry("number")
    reg.add("two", 2, description="even", tags={"even"}, aliases=("deux",))
    reg.add("one", 1, description="odd", tags={"odd"})
    assert reg["DEUX"] == 2 and dict(reg) == {"one": 1, "two": 2}
    assert reg.names(sort=False) == ["two", "one"] and list(reg) == ["one", "two"]
    assert reg.items() == [("one", 1), ("two", 2)] and reg.tags() == ["even", "odd"]
    with pytest.raises(KeyError):
        reg["three"]


@pytest.mark.parametrize("registry", ALL, ids=lambda r: r.what)
def test_every_entry_has_a_description_and_unknown_names_list_the_choices(
    registry: Registry[object],
) -> None:
    entries = registry.entries()
    assert entries and all(e.description for e in entries)
    with pytest.raises(UnknownNameError) as info:
        registry.get("no-such-thing")
    assert info.value.choices == registry.names()
    assert registry.names()[0] in str(info.value)


def test_models_are_tagged_and_filtered_for_dropdowns() -> None:
    names = [s.name for s in list_models()]
    assert names[0] == "xgboost" and names[-1] == "auto"  # registration order, auto last
    finetuned = {f"finetune-{e}" for e in ("selfies-ted", "smi-ted", "smi-ssed", "graph-ged")}
    # other helpers' end-to-end models may join: check ours are there and tagged
    assert {"crystal-graph", *finetuned} <= set(MODELS.names("end-to-end"))
    assert {"rf", "gp", "fusion-moe", "fusion-attention", *finetuned} <= set(
        MODELS.names("native-uncertainty")
    )
    assert "xgboost" not in MODELS.names("native-uncertainty")
    assert "structure" in MODELS.entry("crystal-graph").tags
    assert "crystal-graph" not in [s.name for s in list_models(kind="molecule")]
    assert "crystal-graph" in [s.name for s in list_models(kind="structure")]
    assert "crystal-graph" not in [s.name for s in list_models(task="classification")]
    assert get_spec("gp").builder is not None and get_spec("auto").builder is None
    assert resolve_model_name("random-forest", "regression") == "rf"  # an alias
    with pytest.raises(ValueError, match="choose from auto, crystal-graph"):
        get_spec("xgbost")


def test_strategies_carry_descriptions_and_tags() -> None:
    assert {"graph-ga", "smc", "latent-cmaes"} <= set(STRATEGIES)
    assert STRATEGIES["graph-ga"] is GraphGA and dict(STRATEGIES)["graph-ga"] is GraphGA
    assert "graph-ga" in STRATEGIES.names("classical")
    assert "graph-ga" not in STRATEGIES.names("needs-decoder")
    assert {"latent-cmaes", "latent-sample", "smc-decoder"} <= set(STRATEGIES.names("latent"))
    assert "``" not in STRATEGIES.entry("smc").description
    with pytest.raises(ValueError, match="unknown strategy 'nope'; choose from augmented-memory, "):
        make_strategy("nope")


def test_properties_and_term_kinds_dispatch_through_the_registries() -> None:
    from rdkit import Chem

    assert {"qed", "logp", "sa"} <= set(PROPERTIES) and "logp" in PROPERTIES.names("cheap")
    assert set(TERMS) == {"model", "similarity", "substructure", "pains", "clm_loglik"}
    assert TERMS.get("similarity").keys == {"smiles"}
    assert set(term_choices()) == set(TERMS) | set(PROPERTIES)
    with pytest.raises(SpecError, match="property must be one of") as info:
        make_term({"property": "nope"})
    assert "similarity" in str(info.value) and "qed" in str(info.value)
    with pytest.raises(SpecError, match="unknown key"):
        make_term({"property": "qed", "smiles": "CCO"})  # smiles belongs to similarity
    with pytest.raises(KeyError, match="nope"):
        compute_property("nope", Chem.MolFromSmiles("C"))


def test_a_registered_property_and_strategy_work_everywhere() -> None:
    from rdkit import Chem

    register_property("n_atoms_x2", lambda m: 2.0 * m.GetNumAtoms(), "twice the atoms", {"toy"})

    class ToyStrategy(GraphGA):
        """A toy strategy for this test."""

        name = "toy-strategy"

    register_strategy(ToyStrategy, tags={"toy"})
    try:
        term = make_term({"property": "n_atoms_x2", "max": 10.0})
        result = term.evaluate([Chem.MolFromSmiles("CCO")])
        assert result.raw.tolist() == [6.0] and np.all(result.desirability == 1.0)
        assert isinstance(make_strategy("toy-strategy"), ToyStrategy)
        rows = _json(["properties", "--json", "--tag", "toy"])
        assert [(r["name"], r["kind"], r["description"]) for r in rows] == [
            ("n_atoms_x2", "property", "twice the atoms")
        ]
        rows = _json(["strategies", "--json", "--tag", "toy"])
        assert rows == [
            {
                "name": "toy-strategy",
                "tags": "toy, uses-corpus",
                "description": "A toy strategy for this test",
            }
        ]
    finally:
        PROPERTIES.remove("n_atoms_x2")
        STRATEGIES.remove("toy-strategy")
    assert "toy-strategy" not in STRATEGIES


def test_cli_listings_read_the_registries() -> None:
    models = {r["name"]: r for r in _json(["models", "--json"])}
    assert set(models) == set(MODELS) and models["gp"]["native uncertainty"] == "regression"
    assert models["crystal-graph"]["inputs"] == "structure"
    filtered = _json(["models", "--json", "--kind", "structure", "--task", "classification"])
    assert "crystal-graph" not in {r["name"] for r in filtered} and filtered
    strategies = {r["name"]: r for r in _json(["strategies", "--json"])}
    assert set(strategies) == set(STRATEGIES)
    assert "needs-decoder" in strategies["latent-cmaes"]["tags"]
    terms = {r["name"]: r for r in _json(["properties", "--json"])}
    assert set(terms) == set(term_choices())
    assert terms["model"]["kind"] == "term" and terms["model"]["keys"] == "output, path"
    assert terms["qed"]["kind"] == "property" and terms["qed"]["description"]
    table = runner.invoke(app, ["strategies"], terminal_width=200)
    assert table.exit_code == 0 and "graph-ga" in table.output and "latent" in table.output
    bad = runner.invoke(app, ["models", "--task", "ranking"])
    assert bad.exit_code == 2 and "task" in bad.output


def test_generate_strategy_help_and_choices_come_from_the_registry(tmp_path: Path) -> None:
    res = runner.invoke(app, ["generate", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert all(name in res.output for name in STRATEGIES)
    assert "rotatable_bonds" in res.output  # the RDKit property names, from PROPERTIES
    args = ["generate", "-f", str(EXAMPLES / "qed.yaml"), "--strategy", "nope"]
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "c.csv")], terminal_width=200)
    assert bad.exit_code == 2 and "unknown strategy 'nope'" in bad.output
    assert all(name in bad.output for name in STRATEGIES)  # the choices, however wrapped
    assert not (tmp_path / "c.csv").exists()
