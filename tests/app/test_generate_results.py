"""Generate tab results: a stop keeps what was scored, novelty is said, seed comparison."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from matfuse.app import generate_results  # noqa: E402
from matfuse.app.seed_compare import SIMILARITY, seed_comparison  # noqa: E402


def _api():
    try:
        from matfuse.generate.api import generate
    except ImportError as err:  # pragma: no cover - generation is optional
        pytest.skip(f"matfuse.generate not importable: {err}")
    return generate


def test_a_stopped_search_returns_the_molecules_it_scored():
    generate = _api()
    stop = threading.Event()
    calls: list[int] = []

    def fake_progress_then_stop(on_progress, **kwargs):
        def relay(n, best, smi):
            calls.append(n)
            if n >= 40:
                stop.set()
            on_progress(n, best, smi)

        return generate(on_progress=relay, **kwargs)

    thread, reports = generate_results.run_in_thread(
        fake_progress_then_stop,
        stop,
        objective={"terms": [{"property": "qed", "goal": "maximize"}]},
        strategy="graph-ga",
        budget=2000,
        seed=0,
        progress_every=20,
    )
    thread.join(300)
    items = []
    while not reports.empty():
        items.append(reports.get())
    kind, table = items[-1]
    assert kind == "done" and table.attrs["stopped"] is True
    # stopped at the report after 40 calls: far fewer than the budget, none lost
    assert 40 <= len(table) < 2000 and len(table) == table.attrs["n_calls"]
    assert list(table["rank"][:3]) == [1, 2, 3] and table["score"].is_monotonic_decreasing
    assert "novel" in table.columns


def test_novelty_is_counted_and_known_molecules_are_marked():
    table = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "smiles": ["CCO", "c1ccccc1O", "CCN", "CCCl"],
            "score": [0.9, 0.8, 0.7, 0.6],
            "qed": [0.5, 0.4, 0.3, 0.2],
            "qed_d": [0.9, 0.8, 0.7, 0.6],
            "novel": [True, False, True, True],
        }
    )
    text = generate_results.novelty_text(table, top=2)
    assert text.startswith("**3 of 4** scored molecules are novel")
    assert "1 of the top 2 are already in it" in text
    captions = generate_results.top_captions(table)
    assert captions[1].startswith("#2 · in corpus · score 0.800")
    assert "in corpus" not in captions[0]
    assert "already" not in generate_results.novelty_text(table.iloc[[0, 2]], top=2)


def test_seed_comparison_puts_the_seed_first_with_the_compared_properties():
    _api()
    frame = seed_comparison("CC(=O)Oc1ccccc1C(=O)O", ["CC(=O)Oc1ccccc1C(=O)OC", "CCO", "C1CC("])
    assert frame is not None
    assert list(frame["molecule"]) == ["seed", "#1", "#2", "median of top 2"]
    assert list(frame.columns) == ["molecule", "smiles", "QED", "SA", "logP", "MW", SIMILARITY]
    assert frame.loc[0, SIMILARITY] == 1.0
    # the methyl ester is far more similar to aspirin than ethanol is
    assert frame.loc[1, SIMILARITY] > 0.5 > frame.loc[2, SIMILARITY]
    assert frame.loc[0, "MW"] == pytest.approx(180.159, abs=0.01)
    assert np.isfinite(frame.loc[3, "QED"])
    assert seed_comparison("", ["CCO"]) is None
    assert seed_comparison("C1CC(", ["CCO"]) is None
