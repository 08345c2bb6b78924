"""Chemical-system exploration: compositions, round robin, hull, SUN, objective, resume, CLI.

A fake potential stands in for CHGNet: elements relax to 0 eV/atom, compounds to an energy
that favours dense cells, so that the hull and SUN flags are computable by hand.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("pyxtal")
pytest.importorskip("smact")

from matfuse.cli import app  # noqa: E402
from matfuse.crystals.explore import (  # noqa: E402
    enumerate_compositions,
    explore,
    is_plausible,
)
from matfuse.crystals.journal import JOURNAL_NAME, Journal  # noqa: E402
from matfuse.crystals.prototypes import prototype_structure  # noqa: E402
from matfuse.materials.energy import RelaxResult  # noqa: E402

runner = CliRunner()


class DensityRelaxer:
    """Elements: 0 eV/atom; compounds: -1 - 10 * (atoms per Å^3), unchanged structure."""

    def __call__(self, structure, relax_cell=True):
        if len(structure.composition) == 1:
            return RelaxResult(structure.copy(), 0.0, True, 1)
        energy = -1.0 - 10.0 * len(structure) / structure.volume
        return RelaxResult(structure.copy(), energy, True, 1)


def _explore(out=None, **kw):
    options = {
        "strategy": "random",
        "budget": 6,
        "seed": 1,
        "max_formula_atoms": 3,
        "relaxer": DensityRelaxer(),
        "potential": "fake",
        "write_outputs": False,
        "out_dir": out,
    }
    options.update(kw)
    return explore(["Na", "Cl", "O"], **options)


def test_compositions_are_charge_balanced_ternaries_first():
    comps = [c.reduced_formula for c in enumerate_compositions("Li,Co,O", max_formula_atoms=4)]
    assert comps[:2] == ["LiCoO", "LiCoO2"]  # the full system first, then binaries
    assert {"CoO", "Li2O", "CoO2"} <= set(comps)
    assert "CoO3" not in comps and "LiCo" not in comps  # no common oxidation states / alloy
    only = enumerate_compositions(["Li", "Co", "O"], max_formula_atoms=4, subsystems=False)
    assert all(len(c) == 3 for c in only)
    assert is_plausible(prototype_structure("rocksalt").composition)


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        ("Li,Xx,O", r"unknown element\(s\): Xx"),
        ("O", "at least two"),
        ("Na,K", "no charge-balanced composition"),
    ],
)
def test_bad_systems_are_refused(elements, message):
    with pytest.raises(ValueError, match=message):
        enumerate_compositions(elements)


def test_round_robin_hull_and_sun(tmp_path):
    result = _explore(novelty_reference=[prototype_structure("rocksalt")])
    assert result.n_relaxations == 6
    formulas = [c.proposed.composition.reduced_formula for c in result.by_evaluation()]
    # one candidate of each composition in turn, in enumeration order
    assert formulas[: len(result.compositions)] == result.compositions[:6]
    table = result.table()
    for column in ("cif", "energy_per_atom", "e_above_hull", "spacegroup", "formula", "origin"):
        assert column in table.columns
    assert {"stable", "unique", "novel", "sun"} <= set(table.columns)
    # the hull is made of the run's own phases: the lowest-lying phases are on it
    assert (table["e_above_hull"].dropna() >= -1e-9).all()
    assert (table["e_above_hull"] <= 1e-9).any()
    ranked = table["e_above_hull"].dropna().tolist()
    assert ranked == sorted(ranked)  # no objective: ordered by hull distance
    counts = result.counts()
    assert counts["sun"] == int(table["sun"].sum()) <= counts["stable_unique"]
    assert table["potential"].eq("fake").all()


def test_novelty_against_a_reference_set():
    rocksalt = prototype_structure("rocksalt")  # NaCl
    result = _explore(
        strategy="substitution", compositions=["NaCl"], budget=3, novelty_reference=[rocksalt]
    )
    table = result.table()
    first = table[table["origin"].str.contains("rocksalt")].iloc[0]
    assert first["novel"] is False or first["novel"] == 0  # the rock salt is known
    assert table["novel"].dropna().astype(bool).any()  # the other prototypes are new


def test_objective_orders_the_table():
    spec = {"terms": [{"property": "elements", "require": ["O"]}, {"property": "e_above_hull"}]}
    result = _explore(objective=spec)
    table = result.table()
    unique = table[table["unique"]]
    assert unique["score"].tolist() == sorted(unique["score"], reverse=True)
    assert (unique.loc[~unique["formula"].str.contains("O"), "score"] == 0).all()
    assert {"elements", "elements_d", "e_above_hull_d", "score"} <= set(table.columns)


def test_resume_and_different_run_refused(tmp_path):
    out = tmp_path / "run"
    first = _explore(out, budget=4)
    again = _explore(out, budget=6)
    assert again.n_resumed == 4 and again.n_relaxations == 6
    records = Journal(out / JOURNAL_NAME).of_kind("candidate")
    assert sorted(r["index"] for r in records) == list(range(6))
    full = _explore(tmp_path / "full", budget=6)
    assert [c.origin for c in again.by_evaluation()] == [c.origin for c in full.by_evaluation()]
    assert [c.origin for c in first.by_evaluation()] == [c.origin for c in full.by_evaluation()[:4]]
    with pytest.raises(ValueError, match="different search"):
        _explore(out, seed=2)


# --------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--elements", "Li,Xx,O"], "unknown element(s): Xx"),
        (["--elements", "O"], "at least two"),
        (["--elements", "Na,K"], "no charge-balanced composition"),
        (["--elements", "Na,Cl", "--strategy", "genetic"], "unknown crystal generator"),
        (["--elements", "Na,Cl", "--budget", "0"], "at least 1 relaxation"),
        (["--elements", "Na,Cl", "--max-atoms", "1"], "more than 1 atoms per cell"),
        (["--elements", "Na,Cl", "--objective", '{"terms": []}'], "non-empty list"),
        (["--elements", "Na,Cl", "--objective", "missing.yaml"], "does not exist"),
        (["--elements", "Na,Cl", "--reference", "nothing.cif"], "--reference nothing.cif"),
        (["--elements", "Na,Cl", "--workers", "0"], "at least 1"),
        (["--elements", "Na,Cl", "--potential", "mace"], "unknown potential 'mace'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "search"
    result = runner.invoke(app, ["crystal-search", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not out.exists()


def test_cli_search_writes_the_outputs_and_resumes(tmp_path, monkeypatch):
    import matfuse.crystals.explore as explore_module

    monkeypatch.setattr(explore_module, "make_relaxer", lambda *a, **k: (DensityRelaxer(), "fake"))
    spec = tmp_path / "objective.yaml"
    spec.write_text("terms:\n  - property: e_above_hull\n    max: 0.1\n  - property: hhi\n")
    out = tmp_path / "d"
    args = ["crystal-search", "--elements", "Na,Cl,O", "--budget", "4", "--seed", "0"]
    args += ["--max-formula-atoms", "3", "--objective", str(spec), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "candidates.csv")
    assert len(table) == 4
    for column in ("cif", "energy_per_atom", "e_above_hull", "spacegroup", "formula", "origin"):
        assert column in table.columns
    assert {"e_above_hull_d", "hhi", "hhi_d", "score", "stable", "sun"} <= set(table.columns)
    assert len(list((out / "cifs").glob("*.cif"))) == 4
    assert (out / "energy_vs_evaluation.png").stat().st_size > 0
    summary = json.loads((out / "explore.json").read_text())
    assert summary["counts"]["relaxations"] == 4 and summary["potential"] == "fake"
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "4 resumed" in again.output


def test_python_api_has_the_same_verb():
    import matfuse

    result = matfuse.crystal_search(
        "Na,Cl",
        budget=2,
        relaxer=DensityRelaxer(),
        potential="fake",
        write_outputs=False,
    )
    assert result.n_relaxations == 2 and result.elements == ["Cl", "Na"]
