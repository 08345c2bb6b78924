"""The UI's per-kind traits: every kind has a view, the tabs ask it, models follow the kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from matfuse.app import kinds, learn_tab, predict_tab, represent_tab  # noqa: E402
from matfuse.app.kinds import KIND_CHOICES, chosen_kind, kind_view, noun  # noqa: E402
from matfuse.app.state import SessionState  # noqa: E402
from matfuse.app.training import (  # noqa: E402
    _report_notes,
    baseline_rows,
    check_model_kind,
    model_choices,
    target_transforms,
)

APP = Path(kinds.__file__).parent
#: a comparison with an input kind's name (task kinds and progress events are other words)
_KIND_BRANCH = re.compile(
    r"""[!=]=\s*["'](molecule|composition|structure)["']"""
    r"""|["'](molecule|composition|structure)["']\s*[!=]="""
    r"""|\bin\s*\(\s*["'](molecule|composition|structure)["']"""
)


def test_no_view_branches_on_an_input_kind_name():
    offenders = []
    for path in sorted(APP.glob("*.py")):
        if path.name == "kinds.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _KIND_BRANCH.search(line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == [], "ask kinds.kind_view(kind) instead:\n" + "\n".join(offenders)


def test_every_library_kind_has_a_view_and_the_selector_lists_them():
    from matfuse.inputs import KINDS as LIBRARY

    names = [entry.name for entry in LIBRARY.entries()]
    assert set(kinds.KINDS) <= set(names)
    assert [v for _, v in KIND_CHOICES] == ["auto", *kinds.KINDS]
    for name in kinds.KINDS:
        view = kind_view(name)
        assert view.noun == LIBRARY.get(name).noun and view.plural == noun(name)
        assert view.paste_label and view.paste_one and view.input_what


def test_traits_of_the_builtin_kinds():
    molecule, composition, structure = (kind_view(k) for k in kinds.KINDS)
    assert molecule.picture == "depiction" and molecule.generation
    assert not molecule.has_elements and not molecule.structure_view
    assert composition.picture is None and composition.has_elements
    assert structure.picture == "cell" and structure.structure_view and structure.whole_paste
    assert structure.reads_files and structure.long_text and structure.no_target_hint
    assert not (composition.generation or structure.generation)
    assert represent_tab.map_columns("molecule") == ("molecule", "smiles")
    assert represent_tab.map_columns("structure") == ("material", "formula")
    assert predict_tab.input_labels("structure")[0].startswith("One structure")


def test_an_unregistered_kind_gets_a_generic_view():
    view = kind_view("composition+structure")  # a multimodal table: no view of its own
    assert view.noun == "input" and view.picture is None and not view.structure_view
    assert predict_tab.parse_pasted_for("composition+structure", "a\nb")[0] == ["a", "b"]
    assert chosen_kind("auto") is None and chosen_kind("") is None
    assert chosen_kind("structure") == "structure"


def test_whole_paste_kinds_take_the_text_as_one_input():
    inputs, names = predict_tab.parse_pasted_for("structure", "data_x\n_cell_length_a 1")
    assert len(inputs) == 1 and names == ["pasted structure"]
    from matfuse.app.uploads import UploadError

    with pytest.raises(UploadError, match="Paste the whole CIF or POSCAR text"):
        predict_tab.parse_pasted_for("structure", "one line")


def test_the_model_dropdown_offers_end_to_end_models_only_for_their_kinds():
    from matfuse.models import list_models

    end_to_end = {s.name: s.input_kinds for s in list_models() if s.end_to_end}
    assert "crystal-graph" in end_to_end
    for kind in kinds.KINDS:
        offered = {name for _, name in model_choices(kind)}
        assert "auto" in offered and "rf" in offered
        for name, kinds_read in end_to_end.items():
            assert (name in offered) == (kind in kinds_read), (name, kind)
    session = SessionState()  # molecules before any load
    update = learn_tab.model_update(session, "crystal-graph")
    assert update["value"] == "auto"
    assert "crystal-graph" not in [n for _, n in update["choices"]]
    assert learn_tab.model_update(session, "rf")["value"] == "rf"
    with pytest.raises(ValueError, match="crystal-graph learns from structures only"):
        check_model_kind("crystal-graph", "composition")
    check_model_kind("crystal-graph", "structure")


def test_baseline_rows_and_target_transform_notes_from_a_report():
    report = {
        "target_names": ["y", "active"],
        "task_types": ["regression", "classification"],
        "counts": {"labelled": {"y": 10, "active": 10}},
        "baseline": {
            "metrics": {"targets": {"y": {"mae": 1.5, "rmse": 2.5}, "active": {"roc_auc": 0.5}}},
            "training_mean": {
                "targets": {"y": {"mae": 1.6, "rmse": 2.0, "r2": -0.01}, "active": {}}
            },
            "comparison": {
                "y": {"metric": "rmse", "model": 2.2, "baseline": 2.0, "beats_baseline": False}
            },
        },
        "extra": {
            "target_transforms": {
                "y": {"name": "signed-log", "reason": "heavy tail"},
                "active": {"name": "identity"},
            }
        },
    }
    rows = baseline_rows(report)
    assert rows[0] == {
        "split": "test: trivial baseline (median/mean)",
        "target": "y",
        "n": 10,
        "rmse": 2.0,  # RMSE and R² against the training mean, MAE against the median
        "mae": 1.5,
        "r2": -0.01,
    }
    assert rows[1]["split"].endswith("(prior rate)") and rows[1]["roc_auc"] == 0.5
    assert target_transforms(report) == {"y": "signed-log"}
    notes = _report_notes(report)
    assert "**signed-log** transform" in notes and "heavy tail" in notes
    assert "does not beat the trivial baseline on rmse" in notes
    assert baseline_rows({"baseline": None}) == []


def test_loading_a_table_refreshes_the_model_dropdown_for_its_kind():
    from matfuse.app.server import build_app
    from matfuse.app.sessions import SessionLimits

    demo = build_app(SessionLimits())
    refreshes = [
        dep
        for dep in demo.fns.values()
        if getattr(dep.fn, "__name__", "") == "on_kind"
        and any(getattr(o, "elem_id", None) == "model-choice" for o in dep.outputs)
    ]
    # after a bundled load, an upload, a separate test file and a change of kind
    assert len(refreshes) == 4
    assert any(t[1] == "unload" for dep in demo.fns.values() for t in dep.targets)
