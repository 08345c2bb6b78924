"""The Generate tab without a browser: objective specs, the worker thread, the fallback."""

from __future__ import annotations

import re
import sys
import threading

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from matfuse.app import generate_tab  # noqa: E402
from matfuse.app.state import SessionState, new_session  # noqa: E402


def test_objective_spec_for_each_target_kind(tmp_path):
    spec = generate_tab.objective_spec(
        qed=True,
        logp=(1.0, None),
        model={"path": tmp_path, "output": "SOL", "goal": "range", "min": -3.0, "max": None},
        similar_to=" CCO ",
    )
    terms = {t["property"]: t for t in spec["terms"]}
    assert terms["qed"] == {"property": "qed", "goal": "maximize"}
    assert terms["logp"]["min"] == 1.0 and terms["logp"]["max"] is None
    assert terms["model"]["name"] == "pred_SOL" and terms["model"]["path"] == str(tmp_path)
    assert terms["model"]["min"] == -3.0
    assert terms["similarity"]["smiles"] == "CCO"
    maximise = generate_tab.objective_spec(
        model={"path": tmp_path, "output": "SOL", "goal": "maximize"}
    )
    assert "min" not in maximise["terms"][0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "at least one target"),
        ({"logp": (None, float("nan"))}, "logP window"),
        ({"similar_to": "  "}, "seed SMILES"),
        ({"model": {"path": "m", "output": "y", "goal": "range"}}, "predicted y"),
    ],
)
def test_objective_spec_mistakes_are_user_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_tab.objective_spec(**kwargs)


def test_model_target_needs_a_trained_model():
    with pytest.raises(ValueError, match="Train a model in the Learn tab"):
        generate_tab.model_term(SessionState(), "SOL", "in the window", 0, 1)
    assert generate_tab.model_target_choices(SessionState()) == []
    assert "No trained model yet" in generate_tab.model_note(SessionState())


def test_tab_says_generation_is_not_installed_when_the_module_is_missing(monkeypatch):
    import gradio as gr

    monkeypatch.setitem(sys.modules, "matfuse.generate.api", None)  # import now fails
    generate, strategies, reason = generate_tab.generation_api()
    assert generate is None and strategies == {} and "matfuse.generate.api" in reason
    with gr.Blocks() as demo:
        built = generate_tab.build(gr.State(new_session))
    assert built.model_target is None
    texts = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert any("Generation is not installed" in str(t) for t in texts)


def _fake_generate(steps: int, release: threading.Event | None = None):
    def generate(on_progress, **kwargs):
        for n in range(1, steps + 1):
            if release is not None:
                release.wait(5)
            on_progress(n * 10, n / steps, "C" * n)
        return pd.DataFrame({"rank": [1], "smiles": ["C" * steps], "score": [1.0]})

    return generate


def _drain(reports):
    thread_items = []
    while True:
        item = reports.get(timeout=5)
        thread_items.append(item)
        if item[0] != "progress":
            return thread_items


def test_worker_relays_progress_then_the_table():
    stop = threading.Event()
    thread, reports = generate_tab.run_in_thread(_fake_generate(3), stop, budget=30)
    items = _drain(reports)
    thread.join(5)
    assert [k for k, _ in items] == ["progress"] * 3 + ["done"]
    assert items[2][1] == (30, 1.0, "CCC")
    assert list(items[-1][1]["smiles"]) == ["CCC"]


def test_stop_ends_the_search_at_its_next_progress_report():
    stop, release = threading.Event(), threading.Event()
    thread, reports = generate_tab.run_in_thread(_fake_generate(100, release), stop)
    stop.set()
    release.set()
    items = _drain(reports)
    thread.join(5)
    assert items[-1] == ("stopped", None) and not thread.is_alive()


def test_errors_in_the_search_are_reported_not_raised():
    def broken(on_progress, **kwargs):
        raise ValueError("unknown strategy 'nope'")

    thread, reports = generate_tab.run_in_thread(broken, threading.Event())
    kind, err = reports.get(timeout=5)
    assert kind == "error" and "unknown strategy" in str(err)


def test_real_generation_table_is_shown_ranked_with_captions(tmp_path):
    generate, strategies, reason = generate_tab.generation_api()
    if generate is None:
        pytest.skip(f"matfuse.generate not importable: {reason}")
    assert "graph-ga" in dict(generate_tab.strategy_choices(strategies)).values()
    seen = []
    table = generate(
        generate_tab.objective_spec(qed=True, logp=(1.0, 3.0)),
        strategy="graph-ga",
        budget=60,
        seed=0,
        on_progress=lambda n, b, s: seen.append(n),
        progress_every=20,
    )
    assert seen and seen[-1] == 60
    shown = generate_tab.shown_table(table)
    assert list(shown.columns[:5]) == ["rank", "smiles", "score", "qed", "logp"]
    assert shown["score"].is_monotonic_decreasing
    assert not any(c.endswith("_d") for c in shown.columns)
    captions = generate_tab.top_captions(table.head(3))
    assert re.match(r"#1 ·( in corpus ·)? score ", captions[0]) and " · qed " in captions[0]
    assert " · logp " in captions[0]
    csv = generate_tab.write_candidates(table, tmp_path)
    assert len(pd.read_csv(csv)) == len(table)


def test_model_trained_in_the_session_is_a_generation_target(smiles):
    generate, _, reason = generate_tab.generation_api()
    if generate is None:
        pytest.skip(f"matfuse.generate not importable: {reason}")
    from conftest_helpers import logp
    from matfuse.app import data_tab
    from matfuse.app.training import train_model
    from matfuse.app.uploads import table_from_frame

    session = SessionState()
    frame = pd.DataFrame({"smiles": smiles, "logp": logp(smiles)})
    session.set_table(table_from_frame(frame, targets=["logp"]), "test data")
    data_tab.apply_choices(session, "smiles", ["logp"], "random", test_size=0.25)
    train_model(session, ["maccs"], model="rf", params={"n_estimators": 10}, compare=False)
    try:
        assert generate_tab.model_target_choices(session) == ["logp"]
        assert "predicting **logp**" in generate_tab.model_note(session)
        labels = session.table.target_matrix()[:, 0]
        low, high = generate_tab.default_window(session, "logp")
        assert low == round(float(np.nanquantile(labels, 0.75)), 2)
        assert high == round(float(np.nanmax(labels)), 2)
        assert generate_tab.default_window(session, "nope") == (None, None)
        term = generate_tab.model_term(session, None, "in the window", 1.0, 2.5)
        assert term["output"] == "logp" and term["goal"] == "range"
        table = generate(
            generate_tab.objective_spec(model=term), strategy="graph-ga", budget=30, seed=0
        )
        assert {"pred_logp", "pred_logp_std", "score"} <= set(table.columns)
        assert table["score"].between(0, 1).all()
    finally:
        session.cleanup()


def test_relay_batches_progress_and_never_waits_on_a_dead_worker():
    from matfuse.app.generate_results import relay

    stop = threading.Event()
    thread, reports = generate_tab.run_in_thread(_fake_generate(3), stop)
    items = list(relay(thread, reports, 0.05))
    progress = [p for batch, _ in items for p in batch]
    assert [p[0] for p in progress] == [10, 20, 30]
    assert [o is None for _, o in items[:-1]] == [True] * (len(items) - 1)
    assert items[-1][1][0] == "done"
    silent = threading.Thread(target=lambda: None)
    silent.start()
    (_, outcome), *rest = list(relay(silent, __import__("queue").Queue(), 0.05))
    assert not rest and outcome[0] == "error" and "without a result" in str(outcome[1])
