"""The UI's logic without a browser: split choices, training, prediction, maps, cleanup."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from conftest_helpers import logp  # noqa: E402
from matfuse.app import data_tab, data_views, predict_tab, represent_tab  # noqa: E402
from matfuse.app.plots import latent_map, map_frame, rows_in_range  # noqa: E402
from matfuse.app.state import SessionState, delete_session, new_session  # noqa: E402
from matfuse.app.training import (  # noqa: E402
    FUSED_LABEL,
    TRAIN_LABEL,
    default_hyperparameters,
    parse_hyperparameters,
    train_model,
)
from matfuse.app.uploads import UploadError, table_from_frame  # noqa: E402


@pytest.fixture
def session(smiles):
    frame = pd.DataFrame({"ID": range(len(smiles)), "smiles": smiles, "logp": logp(smiles)})
    frame.loc[3, "smiles"] = "C1CC("  # one invalid row must not break anything
    s = new_session()
    s.set_table(table_from_frame(frame, targets=["logp"]), "test data")
    yield s
    s.cleanup()


def test_column_guesses_and_split_choices(session):
    frame = session.table.frame
    numeric = data_tab.numeric_columns(frame, ("smiles",))
    assert numeric == ["ID", "logp"]
    ranked = data_tab.rank_target_candidates(frame, ("smiles",))
    assert [c.name for c in ranked] == ["logp"]  # an ID column is never a target


def test_the_guessed_target_is_said_and_a_leaking_column_is_flagged():
    """The UI guesses like `matfuse train`: measured before another model's prediction, and
    a column that nearly repeats the target is named as a possible leak."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.normal(size=30)
    frame = pd.DataFrame(
        {
            "Compound ID": [f"m{i}" for i in range(30)],
            "ESOL predicted log solubility in mols per litre": y + rng.normal(0, 0.5, 30),
            "Molecular Weight": rng.uniform(50, 500, 30),
            "measured log solubility in mols per litre": y,
            "y copy": y * 2 + 0.001 * rng.normal(size=30),
            "smiles": ["C"] * 30,
        }
    )
    ranked = data_tab.rank_target_candidates(frame, ("smiles",))
    assert ranked[0].name == "measured log solubility in mols per litre"
    note = data_tab.target_note(frame, ranked[0].name, ranked, guessed=True, exclude=("smiles",))
    assert "guessed: named like measured" in note
    assert "`y copy`" in note and "label leak" in note
    assert "as provided" not in data_tab.split_choices(False)
    assert data_tab.split_choices(True)[0] == "as provided"


def test_preview_and_problem_tables(session):
    preview = data_views.preview_frame(session.table)
    assert list(preview.columns[:2]) == ["#", "status"]
    assert preview["status"].iloc[3].startswith("✗ unparsable SMILES")
    problems = data_views.problem_frame(session.table)
    assert problems["#"].tolist() == [4] and "unparsable" in problems["problem"].iloc[0]


def test_apply_choices_errors_are_user_messages(session):
    with pytest.raises(UploadError, match="at least one target"):
        data_tab.apply_choices(session, "smiles", [], "random")
    with pytest.raises(UploadError, match="cannot also be a target"):
        data_tab.apply_choices(session, "smiles", ["smiles"], "random")
    with pytest.raises(UploadError, match="SMILES"):
        data_tab.apply_choices(session, "ID", ["logp"], "random")
    assert SessionState().table is None
    with pytest.raises(UploadError, match="Load a dataset"):
        data_tab.apply_choices(SessionState(), "smiles", ["logp"], "random")


@pytest.mark.parametrize("label", [k for k in data_tab.SPLITS if k != "as provided"])
def test_every_split_choice_works(session, label):
    text = data_tab.apply_choices(session, "smiles", ["logp"], label, test_size=0.2)
    data = session.split
    assert data is not None and len(data.test) > 0
    assert f"{len(data.test):,} test" in text
    assert not session.needs_split


def test_hyperparameters_come_from_the_registry():
    rf = default_hyperparameters("rf")
    assert rf["n_estimators"] == 500 and rf["max_features"] == 0.3
    assert default_hyperparameters("auto") == {}
    assert parse_hyperparameters('{"n_estimators": 50, "max_features": 0.3}', "rf") == {
        "n_estimators": 50
    }
    with pytest.raises(ValueError, match="must be JSON"):
        parse_hyperparameters("{n_estimators: 5}", "rf")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        parse_hyperparameters('{"depth": 3}', "rf")
    with pytest.raises(ValueError, match="JSON object"):
        parse_hyperparameters("[1, 2]", "rf")
    with pytest.raises(ValueError, match="auto"):
        parse_hyperparameters('{"n_estimators": 5}', "auto")


def test_every_trainable_model_but_the_parameterless_has_fields():
    """Each registered model (learned fusion, transfer, fine-tuning included) shows its key
    hyperparameters, and every listed name is a real parameter with a default."""
    from matfuse.app.training import KEY_PARAMS
    from matfuse.models import list_models

    for spec in list_models():
        names = KEY_PARAMS.get(spec.name)
        assert names is not None, f"{spec.name} has no KEY_PARAMS entry"
        task = "regression" if spec.supports("regression") else "classification"
        assert list(default_hyperparameters(spec.name, task)) == list(names), spec.name
    moe = default_hyperparameters("fusion-moe")
    assert moe["n_members"] == 5 and moe["modality_dropout"] == 0.2
    assert default_hyperparameters("transfer-mlp")["source"] == "auto"
    assert parse_hyperparameters('{"n_members": 3}', "fusion-moe") == {"n_members": 3}


def test_train_compare_predict_download(session):
    data_tab.apply_choices(session, "smiles", ["logp"], "random", test_size=0.25)
    steps: list[float] = []
    result = train_model(
        session,
        ["ecfp", "maccs"],
        model="rf",
        params={"n_estimators": 30},
        progress=lambda f, m: steps.append(f),
    )
    assert steps == sorted(steps) and steps[-1] == 1.0
    assert set(result.metrics["split"]) >= {TRAIN_LABEL, "test (held out)"}
    assert "training-set metrics" in TRAIN_LABEL
    assert np.isfinite(result.metrics.set_index("split").loc["test (held out)", "rmse"])
    # the trivial baseline's row, as `matfuse train` prints it under the model's
    base = result.metrics[result.metrics["split"].str.contains("trivial baseline")]
    assert list(base["target"]) == ["logp"] and np.isfinite(base["rmse"].iloc[0])
    assert base["split"].iloc[0] == "test: trivial baseline (median/mean)"
    # the library may add its trivial baseline as a row of the comparison
    shown = set(result.comparison["representation"]) - {"baseline"}
    assert shown == {"ecfp", "maccs", FUSED_LABEL}
    captions = [c for _, c in result.figures]
    assert any("parity" in c for c in captions) and any("residuals" in c for c in captions)
    assert all(pd.notna(p) and p.endswith(".png") for p, _ in result.figures)
    assert "Test RMSE" in result.summary
    with zipfile.ZipFile(result.model_zip) as archive:
        assert "matfuse.json" in archive.namelist()
        config = json.loads(archive.read("matfuse.json"))
    assert config["params"]["encoders"] == ["ecfp", "maccs"]

    smiles, names = predict_tab.parse_pasted("CCO ethanol\n# comment\n\nC1CC( broken\n=cmd")
    assert smiles == ["CCO", "C1CC(", "=cmd"] and names == ["ethanol", "broken", ""]
    table = predict_tab.predict_frame(session, smiles, names)
    assert np.isfinite(table.loc[0, "pred_logp"]) and "std_logp" in table
    assert pd.isna(table["error"].iloc[0]) and "unparsable" in table["error"].iloc[1]
    path = predict_tab.write_results(table, session.workdir)
    written = pd.read_csv(path)
    assert written["input"].iloc[2] == "'=cmd"  # spreadsheet formula defused
    assert predict_tab.captions(table, ["logp"])[0].startswith("ethanol · logp ")
    assert "rf" in predict_tab.model_note(session)


def test_classification_gives_roc(smiles):
    y = (logp(smiles) > 1.5).astype(float)
    frame = pd.DataFrame({"smiles": smiles, "active": y})
    s = SessionState()
    s.set_table(table_from_frame(frame), "cls")
    data_tab.apply_choices(s, "smiles", ["active"], "random", test_size=0.3, seed=1)
    result = train_model(s, ["maccs"], model="rf", params={"n_estimators": 20})
    captions = [c for _, c in result.figures]
    assert "active: ROC (test)" in captions
    assert "active: precision–recall (test)" in captions
    assert "active: calibration (test)" in captions
    assert "ROC-AUC" in result.summary
    # the model, then the trivial baseline (the prior rate: ROC-AUC 0.5)
    assert list(result.comparison["representation"]) == ["maccs", "baseline"]
    assert result.comparison["roc_auc"].iloc[-1] == 0.5
    base = result.metrics.set_index("split").loc["test: trivial baseline (prior rate)"]
    assert base["roc_auc"] == 0.5
    s.cleanup()


def test_predict_needs_a_model_and_input():
    with pytest.raises(UploadError, match="Train a model"):
        predict_tab.predict_frame(SessionState(), ["CCO"], [""])
    with pytest.raises(UploadError, match="up to 3"):
        predict_tab.parse_pasted("C\nCC\nCCC\nCCCC", limit=3)


def test_latent_map_and_selection(session):
    blocks = session.get_blocks(["maccs", "ecfp"])
    assert set(session.blocks) == {"maccs", "ecfp"}
    coords, rows, note = latent_map(blocks, ["maccs", "ecfp"])
    assert coords.shape == (len(session.table) - 1, 2) and 3 not in rows
    assert note.startswith("PCA")
    y = session.table.target_matrix()[:, 0]
    frame = map_frame(coords, rows, session.table.parsed.canonical, y, "logp")
    picked = rows_in_range(frame, [frame["x"].min(), frame["x"].median()], limit=5)
    assert 0 < len(picked) <= 5 and picked["x"].max() <= frame["x"].median()


def _map(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(n, 2))
    rows = np.arange(n) * 2  # map rows are dataset rows, not positions
    smiles = ["C" * (1 + i % 5) for i in range(2 * n)]
    return map_frame(coords, rows, smiles, np.linspace(-3, 1, 2 * n), "SOL")


def test_brushed_range_selects_the_points_inside_with_their_target():
    frame = _map()
    lo, hi = float(frame["x"].quantile(0.2)), float(frame["x"].quantile(0.8))
    chosen, label = represent_tab.selection(frame, [hi, lo])  # either drag direction
    inside = frame["x"].between(lo, hi)
    assert set(chosen["row"]) <= set(frame.loc[inside, "row"])
    assert len(chosen) == min(int(inside.sum()), represent_tab.MAX_DEPICTIONS)
    assert label.startswith(f"{int(inside.sum())} molecules with component 1 in")
    items = represent_tab.captioned_depictions(chosen)
    row = int(chosen["row"].iloc[0])
    assert len(items) == len(chosen)
    assert items[0][1] == f"#{row + 1} · SOL {frame.set_index('row').loc[row, 'SOL']:.3g}"
    # the map's tooltip label is the caption's, 1-based like the data preview
    assert frame.set_index("row").loc[row, "molecule"] == f"#{row + 1}"


def test_clicked_point_comes_first_then_its_neighbours_on_the_map():
    frame = _map()
    row = int(frame["row"].iloc[7])
    chosen, label = represent_tab.selection(frame, row)
    assert int(chosen["row"].iloc[0]) == row
    assert len(chosen) == represent_tab.CLICK_NEIGHBOURS + 1
    assert label.startswith(f"Molecule #{row + 1} (first)")
    xy = frame[["x", "y"]].to_numpy() / frame[["x", "y"]].to_numpy().std(axis=0)
    here = xy[7]
    distances = np.linalg.norm(xy - here, axis=1)
    neighbours = set(frame["row"].iloc[np.argsort(distances)[1 : len(chosen)]])
    assert set(chosen["row"].iloc[1:]) == neighbours


@pytest.mark.parametrize(
    "frame, index",
    [
        (None, [0.0, 1.0]),  # no map drawn yet
        (_map(), None),
        (_map(), [0.1, 0.1]),  # a zero-width brush is a click; its own event follows
        (_map(), 1),  # an odd row: not on this map
    ],
)
def test_select_events_that_pick_nothing_are_ignored(frame, index):
    assert represent_tab.selection(frame, index) is None


def test_session_files_are_removed(session):
    workdir = session.workdir
    (workdir / "x.csv").write_text("a")
    delete_session(session)
    assert not workdir.exists()
    delete_session(None)  # the callback must tolerate an empty state


def test_encoder_catalogue_lists_every_registered_encoder():
    from matfuse.encoders import list_encoders

    catalogue = represent_tab.encoder_catalogue()
    assert list(catalogue["name"]) == [s.name for s in list_encoders()]
    usable = [name for choices in represent_tab.encoder_groups().values() for _, name in choices]
    assert {"ecfp", "maccs", "rdkit2d", "chemnet"} <= set(usable)
    assert represent_tab.chosen_encoders(["maccs"], ["ecfp", "nope"]) == ["ecfp", "maccs"]


def test_an_encoder_that_cannot_be_built_is_listed_as_unavailable():
    class Broken:
        name = "broken-fm"
        description = "pretrained weights not downloaded"
        modality = "smiles"
        pretrained = True

        @property
        def dim(self) -> int:
            raise FileNotFoundError("no weights for 'broken-fm'; train them first")

    row = represent_tab._describe(Broken())
    assert row["available"] == "no: no weights for 'broken-fm'"
    assert row["dim"] is None and row["modality"] == "smiles"


def test_cli_has_the_app_command():
    from typer.testing import CliRunner

    from matfuse.cli import app

    result = CliRunner().invoke(app, ["app", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "127.0.0.1" in result.output
    assert "no-share" in result.output


def test_predict_inputs_from_a_file(tmp_path, smiles):
    path = tmp_path / "new.csv"
    pd.DataFrame({"Name": ["a", "b"], "SMILES": smiles[:2], "extra": [1, 2]}).to_csv(path)
    got_smiles, names = predict_tab.inputs_from_file(str(path))
    assert got_smiles == smiles[:2] and names == ["a", "b"]
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"\x80\x04")
    with pytest.raises(UploadError, match="not accepted"):
        predict_tab.inputs_from_file(str(bad))


def test_predicting_an_uploaded_table_keeps_every_column_and_bad_rows(session, tmp_path):
    """Like `matfuse predict`: the user's columns stay, a bad row keeps its name and SMILES."""
    data_tab.apply_choices(session, "smiles", ["logp"], "random", test_size=0.25)
    train_model(session, ["maccs"], model="rf", params={"n_estimators": 10}, compare=False)
    path = tmp_path / "new.csv"
    pd.DataFrame(
        {"Compound ID": ["a", "b", "c"], "SMILES": ["CCO", "C1CC(", "c1ccccc1"], "batch": [7, 8, 9]}
    ).to_csv(path, index=False)
    got = predict_tab.predict_uploaded_table(session, str(path), "molecule")
    assert got is not None
    result, inputs = got
    assert list(result.columns[:3]) == ["Compound ID", "SMILES", "batch"]
    assert list(result["Compound ID"]) == ["a", "b", "c"] and list(result["batch"]) == [7, 8, 9]
    assert result.loc[1, "SMILES"] == "C1CC(" and "unparsable" in result.loc[1, "error"]
    assert np.isfinite(result.loc[0, "pred_logp"]) and np.isnan(result.loc[1, "pred_logp"])
    assert inputs == ["CCO", "C1CC(", "c1ccccc1"]
    assert predict_tab.captions(result, ["logp"])[0].startswith("a · logp ")
    # pasted text: the broken line keeps its name and its raw input
    pasted = predict_tab.predict_frame(session, ["CCO", "C1CC("], ["ethanol", "broken"])
    assert list(pasted["name"]) == ["ethanol", "broken"]
    assert list(pasted["input"]) == ["CCO", "C1CC("]
