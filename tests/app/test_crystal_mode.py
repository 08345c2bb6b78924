"""The Generate tab's crystal mode without a browser: requests, objectives, runs, stop, resume.

A fake relaxer stands in for CHGNet (energy favours dense cells), so these take seconds; the
browser walk in ``test_e2e_materials.py`` relaxes with CHGNet itself.
"""

from __future__ import annotations

import threading
import zipfile
from types import SimpleNamespace

import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")
pytest.importorskip("pyxtal", reason="crystal search needs the materials extra")

from matfuse.app import crystal_design as cd  # noqa: E402
from matfuse.app import crystal_mode, generate_tab  # noqa: E402
from matfuse.app.generate_results import GenerationStopped, run_in_thread  # noqa: E402
from matfuse.app.state import SessionState, new_session  # noqa: E402
from matfuse.materials.energy import RelaxResult  # noqa: E402

CSP = "Structure prediction (a formula)"
SYSTEM = "Chemical-system search (elements)"


class FakeRelaxer:
    """Energy per atom = -10 * atoms per volume (elements: 0); counts candidate calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, structure, relax_cell=True):
        if len(structure.composition) == 1:
            return RelaxResult(structure.copy(), 0.0, True, 1)
        self.calls += 1
        return RelaxResult(structure.copy(), -10.0 * len(structure) / structure.volume, True, 1)


def _request(task=CSP, budget=4, **kw):
    args = {
        "formula": "NaCl",
        "elements": "Na,Cl",
        "strategy": "random",
        "seed": 3,
        "z_low": 1,
        "z_high": 2,
        "relax_steps": 10,
    }
    args.update(kw)
    return cd.make_request(
        task,
        args["formula"],
        args["elements"],
        args["strategy"],
        budget,
        args["seed"],
        args["z_low"],
        args["z_high"],
        args["relax_steps"],
        objective=args.get("objective"),
        known=args.get("known", ()),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"formula": "NaXx"}, "NaXx"),
        ({"formula": "  "}, "Type a formula"),
        ({"budget": 0}, "between 1 and 200"),
        ({"budget": 5000}, "between 1 and 200"),
        ({"z_low": 3, "z_high": 1}, "must not exceed"),
        ({"strategy": "nope"}, "Unknown strategy"),
        ({"relax_steps": None}, "Give the relaxation steps"),
        ({"task": SYSTEM, "elements": "Li,Qq"}, "unknown element"),
        ({"task": SYSTEM, "elements": "Li"}, "at least two"),
        ({"task": SYSTEM, "elements": ""}, "Type the elements"),
    ],
)
def test_bad_requests_are_one_line_user_messages(kwargs, message):
    task = kwargs.pop("task", CSP)
    budget = kwargs.pop("budget", 4)
    with pytest.raises(ValueError, match=message) as info:
        _request(task, budget, **kwargs)
    assert "\n" not in str(info.value)


def test_requests_name_their_run_by_settings_but_not_budget():
    from matfuse.crystals.prototypes import prototype_structure

    small, large = _request(budget=2), _request(budget=8)
    assert small.target == "NaCl" and small.run_name() == large.run_name()
    assert _request(seed=4).run_name() != small.run_name()
    system = _request(SYSTEM, elements="O,Li,Co", objective={"terms": []})
    assert system.target == "Co-Li-O" and system.task == "explore"
    # a CSP ranks by energy: an objective is only for system searches
    assert _request(objective={"terms": [{"property": "hhi"}]}).objective is None
    nacl = prototype_structure("rocksalt")
    kcl = prototype_structure("rocksalt", {"Na": "K"})
    known = _request(known=[nacl, kcl, None])
    assert [s.composition.reduced_formula for s in known.references] == ["NaCl"]
    assert len(known.novelty_reference) == 2
    assert known.run_name() != small.run_name()


def test_objective_spec_puts_stability_first_and_is_none_without_targets(tmp_path):
    assert cd.crystal_objective_spec(hull_max=0.1) is None
    spec = cd.crystal_objective_spec(
        hull_max=0.05,
        model={"path": tmp_path, "output": "gap", "min": 1.0, "max": float("nan")},
        require="Li",
        exclude="Co, Ni",
        low_hhi=True,
    )
    terms = spec["terms"]
    assert terms[0] == {"property": "e_above_hull", "max": 0.05}
    assert terms[1]["property"] == "model" and terms[1]["max"] is None
    assert terms[2] == {"property": "elements", "require": ["Li"], "exclude": ["Co", "Ni"]}
    assert terms[3] == {"property": "hhi", "goal": "minimize"}
    from matfuse.crystals.objectives import load_crystal_objective

    loadable = {"terms": [t for t in terms if t["property"] != "model"]}  # no model on disk
    assert [t.name for t in load_crystal_objective(loadable).terms] == [
        "e_above_hull",
        "elements",
        "hhi",
    ]
    with pytest.raises(ValueError, match="window for predicted gap"):
        cd.crystal_objective_spec(model={"path": tmp_path, "output": "gap"})


def test_a_run_writes_the_cli_outputs_and_a_ranked_table(tmp_path):
    relaxer = FakeRelaxer()
    outcome = cd.run_crystal_design(_request(budget=4), tmp_path, relaxer=relaxer)
    assert relaxer.calls == 4 and not outcome.stopped
    assert (outcome.out_dir / "candidates.csv").exists()
    shown = cd.shown_crystal_table(outcome.result)
    assert list(shown["rank"]) == [1, 2, 3, 4] and "cif" not in shown.columns
    relaxed = shown.dropna(subset=["energy_per_atom"])
    unique = relaxed[relaxed["duplicate_of"].isna()]
    assert unique["energy_per_atom"].is_monotonic_increasing
    curve = cd.energy_curve(outcome.result)
    best = curve[curve["series"] == "best so far"]["energy"]
    assert len(best) == 4 and best.is_monotonic_decreasing
    assert best.iloc[-1] == pytest.approx(outcome.result.best.energy_per_atom)
    text = cd.crystal_summary(outcome, 1.0)
    assert "**Done:** 4 relaxations of **NaCl**" in text and "proxy for a DFT hull" in text
    archive = cd.zip_run(outcome.out_dir, tmp_path / "run.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert "candidates.csv" in names and sum(n.startswith("cifs/") for n in names) == 4
    csv = pd.read_csv(zipfile.ZipFile(archive).open("candidates.csv"))
    assert len(csv) == 4 and csv["cif"].notna().all()


def test_pressing_generate_again_with_a_larger_budget_resumes(tmp_path):
    relaxer = FakeRelaxer()
    cd.run_crystal_design(_request(budget=2), tmp_path, relaxer=relaxer)
    more = cd.run_crystal_design(_request(budget=5), tmp_path, relaxer=relaxer)
    assert relaxer.calls == 5 and more.result.n_resumed == 2
    assert more.result.n_relaxations == 5


def test_stop_keeps_and_ranks_what_was_relaxed(tmp_path):
    relaxer = FakeRelaxer()
    stop = threading.Event()
    reports_seen = []

    def on_progress(n_done, budget, best, origin):
        reports_seen.append(n_done)
        if n_done >= 2:
            raise GenerationStopped

    outcome = cd.run_crystal_design(_request(budget=6), tmp_path, on_progress, relaxer)
    assert outcome.stopped and outcome.result.n_relaxations == 2 and relaxer.calls == 2
    assert "**Stopped:** 2 relaxations" in cd.crystal_summary(outcome, 1.0)
    # through the worker thread: a stop pressed at once still keeps the relaxation in flight
    stop.set()
    thread, reports = run_in_thread(
        cd.run_crystal_design,
        stop,
        request=_request(budget=3, seed=9),
        root=tmp_path,
        relaxer=relaxer,
    )
    thread.join(30)
    items = []
    while not reports.empty():
        items.append(reports.get())
    assert [kind for kind, _ in items] == ["done"]
    kept = items[0][1]
    assert kept.stopped and kept.result.n_relaxations == 1


def test_a_system_search_reports_sun_counts_against_loaded_structures(tmp_path):
    from matfuse.crystals.prototypes import prototype_structure

    nacl = prototype_structure("rocksalt")
    request = _request(SYSTEM, budget=3, elements="Na,Cl", known=[nacl])
    outcome = cd.run_crystal_design(request, tmp_path, relaxer=FakeRelaxer())
    text = cd.crystal_summary(outcome, 1.0)
    assert "SUN" in text and "novel against the 1 loaded structures" in text
    shown = cd.shown_crystal_table(outcome.result)
    assert {"stable", "unique", "novel", "sun"} <= set(shown.columns)


def test_a_materials_model_is_a_crystal_target_and_a_molecule_model_is_not(tmp_path):
    session = SessionState()
    assert crystal_mode.crystal_model_choices(session) == []
    with pytest.raises(ValueError, match="compositions or crystal structures"):
        crystal_mode.crystal_model_term(session, "gap", 1, 2)
    session.model = SimpleNamespace(
        input_type="molecule", target_names_=["logS"], encoders=["ecfp"], model="rf"
    )
    assert crystal_mode.crystal_model_choices(session) == []
    assert "reads molecules" in crystal_mode.crystal_model_note(session)
    session.model = SimpleNamespace(
        input_type="composition", target_names_=["gap"], encoders=["composition"], model="rf"
    )
    session.model_dir = tmp_path
    assert crystal_mode.crystal_model_choices(session) == ["gap"]
    term = crystal_mode.crystal_model_term(session, None, 1.0, 3.0)
    assert term == {"path": tmp_path, "output": "gap", "min": 1.0, "max": 3.0}
    assert "predicting **gap**" in crystal_mode.crystal_model_note(session)


def test_the_generate_tab_has_both_modes_and_refreshes_both_after_training(tmp_path):
    import gradio as gr

    with gr.Blocks() as demo:
        built = generate_tab.build(gr.State(new_session))
    labels = {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert {"Molecules", "Crystals"} <= labels
    assert built.crystals is not None and built.crystals.model_target is not None
    assert len(built.refreshed) == 6
    session = SessionState()
    session.model = SimpleNamespace(
        input_type="structure", target_names_=["e_form"], encoders=["chgnet"], model="rf"
    )
    session.model_dir = tmp_path
    updates = built.after_training(session)
    assert len(updates) == 6 and updates[4].choices == [("e_form", "e_form")]
