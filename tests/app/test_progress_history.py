"""Training progress, run history, hyperparameter fields and classification plots, no browser."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from conftest_helpers import logp  # noqa: E402
from matfuse.app import data_tab  # noqa: E402
from matfuse.app.curves import classification_plots, target_units  # noqa: E402
from matfuse.app.history import MAX_RUNS, reload_run  # noqa: E402
from matfuse.app.hyper_widgets import N_FIELDS, field_specs, json_with_field  # noqa: E402
from matfuse.app.state import ENCODE_CHUNK, encode_in_chunks, new_session  # noqa: E402
from matfuse.app.train_progress import BackgroundRun, TrainProgress  # noqa: E402
from matfuse.app.training import train_model  # noqa: E402
from matfuse.app.uploads import table_from_frame  # noqa: E402
from matfuse.progress import Stage  # noqa: E402
from matfuse.workflow import encode_all  # noqa: E402


@pytest.fixture
def session(smiles):
    frame = pd.DataFrame({"smiles": smiles, "logp (log units)": logp(smiles)})
    s = new_session()
    s.set_table(table_from_frame(frame, targets=["logp (log units)"]), "toy.csv")
    data_tab.apply_choices(s, "smiles", ["logp (log units)"], "random", test_size=0.25)
    yield s
    s.cleanup()


def test_progress_moves_inside_a_milestone_and_gives_an_eta():
    ticks = iter(np.arange(0.0, 100.0, 1.0))
    p = TrainProgress(clock=lambda: float(next(ticks)))
    assert p.eta_s() is None  # nothing done yet: no guess
    p.milestone(0.0, "computing features")
    p.on_stage(Stage("encode", "ecfp", 1, 2))  # half of the features span (0 .. 0.35)
    assert p.fraction == pytest.approx(0.175)
    p.milestone(0.65, "fitting the fused model")
    p.on_stage(Stage("encode", "ecfp", 0, 2))
    p.on_stage(Stage("fit", "rf", 0, 1))  # encoding is the first quarter of the span
    assert p.fraction == pytest.approx(0.65 + 0.25 * 0.27)
    eta = p.eta_s()
    assert eta is not None and eta > 0
    text = p.text()
    assert "fit rf (1/1)" in text and "left" in text
    assert "✓ encode ecfp (2/2)" in text and "✓ computing features" in text
    p.milestone(1.0, "done")
    assert p.finished and "Training finished" in p.text()


def test_a_step_longer_than_the_estimate_says_the_time_left_is_unknown():
    now = [0.0]
    p = TrainProgress(clock=lambda: now[0])
    now[0] = 10.0
    p.milestone(0.65, "fitting the fused model")
    now[0] = 11.0
    assert p.eta_s() == pytest.approx(11.0 * 0.35 / 0.65)
    now[0] = 80.0  # the fit has run 69 s: far past the 6 s the pace predicted
    assert p.eta_s() is None
    assert "time left unknown" in p.text() and "this step has run 70 s" in p.text()


def test_background_training_reports_library_stages_and_records_the_run(session):
    seen: list[str] = []
    tracker = TrainProgress()
    original = tracker.on_stage

    def spy(stage: Stage) -> None:
        seen.append(stage.text)
        original(stage)

    tracker.on_stage = spy  # type: ignore[method-assign]
    run = BackgroundRun.start(
        lambda progress: train_model(
            session,
            ["ecfp", "maccs"],
            model="rf",
            params={"n_estimators": 20},
            compare=False,
            progress=progress,
        ),
        tracker,
    )
    while not run.wait(0.2):
        pass
    assert run.error is None, run.error
    assert any(s.startswith("encode ecfp") for s in seen)
    assert any(s.startswith("encode maccs") for s in seen)
    assert any(s.startswith("fit rf") for s in seen)
    assert tracker.finished and tracker.fraction == 1.0

    # the run is in the history, without arrays, and its model can be reloaded
    frame = session.history.frame()
    assert list(frame["run"]) == [1]
    row = frame.iloc[0]
    assert row["encoders"] == "ecfp + maccs" and row["data"] == "toy.csv"
    assert row["test metric"] == "rmse" and np.isfinite(row["value"])
    assert row["model"].startswith("rf") and "n_estimators" in row["model"]
    assert np.isfinite(row["baseline"]) and row["reloadable"] == "yes"
    record = session.history.records[0]
    json.dumps(record.as_dict(), default=str)  # settings and metrics only
    assert not any(isinstance(v, np.ndarray) for v in record.as_dict().values())

    from matfuse.app.sessions import approx_nbytes

    assert approx_nbytes(session.history) < 100_000  # settings and metrics, no arrays
    train_model(session, ["ecfp"], model="rf", params={"n_estimators": 10}, compare=False)
    assert list(session.history.frame()["run"]) == [2, 1]
    first_pred = None
    reload_run(session, 1)
    assert session.model.encoders == ["ecfp", "maccs"]
    first_pred = session.model.predict(["CCO"])[0, 0]
    reload_run(session, 2)
    assert session.model.encoders == ["ecfp"]
    assert session.model.predict(["CCO"])[0, 0] != first_pred
    with pytest.raises(ValueError, match="no run 7"):
        reload_run(session, 7)


def test_old_runs_lose_their_model_dir_but_stay_listed(session, tmp_path):
    from matfuse.app.history import RunHistory, RunRecord

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "matfuse.json").write_text("{}")
    history = RunHistory()
    for i in range(MAX_RUNS + 2):
        record = RunRecord(
            run=history.next_number(),
            time="12:00:00",
            data="d",
            kind="molecule",
            targets=["y"],
            encoders=["ecfp"],
            model="rf",
            params={},
            split="random",
            n_fit=10,
            n_test=3,
            metric="rmse",
            value=float(i),
            baseline=None,
            seconds=1.0,
            summary="",
        )
        history.add(record, model_dir, tmp_path / "runs")
    frame = history.frame()
    assert len(frame) == MAX_RUNS + 2
    assert list(frame["reloadable"]).count("yes") == MAX_RUNS
    session.history = history
    with pytest.raises(ValueError, match="no longer kept"):
        reload_run(session, 1)


def test_chunked_encoding_equals_one_pass(smiles):
    table = table_from_frame(pd.DataFrame({"smiles": (smiles * 40)[: ENCODE_CHUNK + 30]}))
    whole = encode_all(table.parsed, ["maccs"], progress=False)["maccs"]
    chunked = encode_in_chunks(table.parsed, "maccs")
    np.testing.assert_array_equal(np.nan_to_num(whole, nan=-1), np.nan_to_num(chunked, nan=-1))


def test_hyperparameter_fields_come_from_the_registry_and_write_json():
    specs = field_specs("rf", "regression", 200)
    names = [s[0] for s in specs if s]
    assert names == ["n_estimators", "max_features", "min_samples_leaf", "max_depth"]
    assert len(specs) == N_FIELDS and specs[-1] is None
    assert all(s is None for s in field_specs("linear"))
    text = json_with_field('{"n_estimators": 100, "max_depth": null}', "n_estimators", "300")
    assert json.loads(text) == {"n_estimators": 300, "max_depth": None}
    assert json.loads(json_with_field("{broken", "max_features", "sqrt")) == {
        "max_features": "sqrt"
    }
    assert json.loads(json_with_field("{}", "max_depth", "none")) == {"max_depth": None}


def test_classification_gets_roc_pr_and_calibration(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.6 + rng.uniform(0, 0.4, 200), 0, 1)
    items = classification_plots(y, p, "active", tmp_path)
    captions = [c for _, c in items]
    assert captions == [
        "active: ROC (test)",
        "active: precision–recall (test)",
        "active: calibration (test)",
    ]
    assert all((tmp_path / path).exists() for path, _ in items)
    assert classification_plots(np.ones(10), np.ones(10), "one class", tmp_path) == []


def test_units_only_when_the_column_name_says_them():
    assert target_units("measured log solubility in mols per litre") == "log mols per litre"
    assert target_units("solubility in g per litre") == "g per litre"
    assert target_units("heat_ref (eV/atom)") == "eV/atom"
    assert target_units("yield [MPa]") == "MPa"
    assert target_units("gap_ev") == "eV"
    assert target_units("gap expt") is None
    assert target_units("Class") is None
    assert target_units("time in the fridge") is None


def test_map_colours_viridis_for_plain_targets_diverging_for_signed():
    from matfuse.app.map_colours import DIVERGING, SEQUENTIAL, target_colours

    rng = np.random.default_rng(0)
    plain = target_colours(rng.uniform(1, 5, 200))
    assert plain is not None and plain.scheme == SEQUENTIAL
    order = sorted(plain.colours)
    assert plain.colours[order[0]] == "#440154"  # viridis starts dark purple...
    assert plain.colours[order[-1]] == "#fde725"  # ...and ends yellow
    signed = target_colours(np.r_[rng.normal(0, 1, 200), np.nan])
    assert signed is not None and signed.scheme == DIVERGING and "centred on 0" in signed.note
    assert signed.labels[-1] == "no label"
    binary = target_colours(np.array([0.0, 1.0, 1.0, 0.0]))
    assert binary is not None and binary.labels == ["1: 0", "2: 1", "2: 1", "1: 0"]
    assert target_colours(np.array([np.nan])) is None


@pytest.mark.parametrize("method", ["t-SNE", "UMAP"])
def test_neighbour_maps(session, method):
    from matfuse.app.plots import latent_map, projection_methods

    if method not in projection_methods():
        pytest.skip(f"{method} is not installed here")
    blocks = session.get_blocks(["maccs"])
    coords, rows, note = latent_map(blocks, ["maccs"], method)
    assert coords.shape == (len(rows), 2) and np.isfinite(coords).all()
    assert note.startswith(method)
    assert "t-SNE" in projection_methods()


def test_chunks_of_one_encoder_are_listed_as_one_step():
    from matfuse.app.train_progress import collapse_chunks

    done = [
        ("computing features (ecfp + maccs)", 0.0),
        ("encode ecfp: rows 1-256 of 300 (1/4)", 1.0),
        ("encode ecfp: rows 257-300 of 300 (2/4)", 0.5),
        ("encode maccs: rows 1-256 of 300 (3/4)", 2.0),
        ("encode maccs: rows 257-300 of 300 (4/4)", 1.0),
        ("fit rf (1/1)", 3.0),
    ]
    assert collapse_chunks(done) == [
        ("computing features (ecfp + maccs)", 0.0),
        ("encode ecfp: 300 rows (2 chunks)", 1.5),
        ("encode maccs: 300 rows (2 chunks)", 3.0),
        ("fit rf (1/1)", 3.0),
    ]
