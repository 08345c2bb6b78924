"""A separate test file becomes the test rows of an "as provided" split."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from conftest_helpers import logp  # noqa: E402
from matfuse.app import data_tab  # noqa: E402
from matfuse.app.state import new_session  # noqa: E402
from matfuse.app.test_file import load_test_upload, with_test_file  # noqa: E402
from matfuse.app.uploads import UploadError, table_from_frame  # noqa: E402


@pytest.fixture
def loaded(smiles):
    train = pd.DataFrame({"name": [f"m{i}" for i in range(30)], "smiles": smiles[:30]})
    train["measured y"] = logp(smiles[:30])
    s = new_session()
    s.set_table(table_from_frame(train, targets=["measured y"]), "train.csv (uploaded)")
    yield s
    s.cleanup()


def test_the_test_file_rows_are_the_held_out_test_set(loaded, smiles, tmp_path):
    test = pd.DataFrame({"SMILES": smiles[30:40], "measured y": logp(smiles[30:40])})
    test.loc[0, "SMILES"] = "C1CC("  # a bad row keeps its place
    path = tmp_path / "test.csv"
    test.to_csv(path, index=False)
    table, labels, note = with_test_file(loaded.table, str(path))
    assert labels == ["train"] * 30 + ["test"] * 10
    assert len(table) == 40 and table.frame["smiles"].iloc[30] == "C1CC("
    assert "10 test rows added after the 30 training rows" in note

    outputs = load_test_upload(str(path), loaded)
    assert "Test file **test.csv**" in outputs[0]
    assert loaded.source == "train.csv + test.csv (test file)"
    status = data_tab.apply_choices(loaded, "smiles", ["measured y"], "predefined")
    assert "as provided" in status
    split = loaded.split
    assert sorted(split.test) == list(range(30, 40))
    assert set(split.train) | set(split.valid) <= set(range(30))


def test_a_test_file_without_the_target_or_inputs_is_refused(loaded, tmp_path):
    no_target = tmp_path / "nolabel.csv"
    pd.DataFrame({"smiles": ["CCO", "CCN"], "other": [1, 2]}).to_csv(no_target, index=False)
    with pytest.raises(UploadError, match="no column 'measured y'"):
        with_test_file(loaded.table, str(no_target))
    before = loaded.source
    outputs = load_test_upload(str(no_target), loaded)
    assert outputs[0].startswith("**Test file not added.**") and loaded.source == before
    with pytest.raises(UploadError, match="training data first"):
        with_test_file(None, str(no_target))


def test_a_wide_table_previews_its_input_target_and_first_columns(smiles):
    from matfuse.app.data_views import PREVIEW_COLUMNS, preview_frame

    frame = pd.DataFrame({f"d{i}": range(20) for i in range(300)})
    frame["smiles"] = smiles[:20]
    frame["pIC50"] = logp(smiles[:20])
    table = table_from_frame(frame, "smiles", ["pIC50"])
    preview = preview_frame(table)
    assert list(preview.columns[:4]) == ["#", "status", "smiles", "pIC50"]
    assert len(preview.columns) == PREVIEW_COLUMNS + 2
