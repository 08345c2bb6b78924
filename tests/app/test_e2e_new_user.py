"""Issue 20 in a real browser: what a new user trips over, fixed.

Progress where the user looks (stages, elapsed, ETA) while a model trains; hyperparameter
fields from the registry; the session's run history with reload; predictions from an
uploaded table that keep every column; a separate test file; t-SNE/UMAP maps with a
perceptually uniform colour map; ROC, precision-recall and calibration plots; a stopped
generation that keeps what it scored, with novelty and a seed comparison.

Screenshots go to ``tests/app/artifacts/`` (``n1-progress.png``, ``n2-history.png``,
``n5-generate-stopped.png`` ...).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest

expect = pytest.importorskip("playwright.sync_api").expect

TRAIN_TIMEOUT_MS = 300_000


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _upload(page, selector: str, path: Path) -> None:
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))


def _fast_encoders(page, keep: tuple[str, ...] = ("ecfp", "maccs")) -> None:
    _tab(page, "2 · Represent")
    boxes = page.locator("#encoders-smiles")
    for box in boxes.locator("input[type=checkbox]").all():
        name = box.get_attribute("name")
        if name in keep:
            box.check()
        elif box.is_checked():
            box.uncheck()


def _choose_rf(page) -> None:
    page.locator("#model-choice input").click()
    page.get_by_role("option", name=re.compile(r"^rf ")).click()
    expect(page.locator("#hyperparameters .cm-content")).to_contain_text("n_estimators")


def test_progress_fields_history_reload_and_predict_upload(page, artifacts: Path, tmp_path):
    page.click("#load-data")
    expect(page.locator("#split-status")).to_contain_text("Split: as provided")
    _fast_encoders(page)
    _tab(page, "3 · Learn")
    _choose_rf(page)
    # the registry's key hyperparameters as fields; a field writes the JSON box
    field = page.locator("#hp-field-0")
    expect(field).to_contain_text("n_estimators")
    field.locator("input").fill("60")
    expect(page.locator("#hyperparameters .cm-content")).to_contain_text('"n_estimators": 60')

    page.click("#train-button")
    progress = page.locator("#train-progress")
    # the box under the button shows the stage, elapsed time and what is left
    expect(progress).to_contain_text(re.compile(r"Training: .+"), timeout=60_000)
    expect(progress).to_contain_text("elapsed")
    page.screenshot(path=str(artifacts / "n1-progress.png"), full_page=True)
    expect(page.locator("#train-summary")).to_contain_text("Test RMSE", timeout=TRAIN_TIMEOUT_MS)
    expect(progress).to_contain_text("Training finished")
    expect(progress).to_contain_text(re.compile(r"✓ encode ecfp"))
    expect(progress).to_contain_text(re.compile(r"✓ fit rf \(1/1\)"))
    expect(page.locator("#metrics-table")).to_contain_text("training-set metrics")
    history = page.locator("#run-history")
    expect(history).to_contain_text("ecfp + maccs")

    # a second run with one encoder: two rows, newest first
    _fast_encoders(page, keep=("maccs",))
    _tab(page, "3 · Learn")
    page.click("#train-button")
    expect(page.locator("#train-summary")).to_contain_text(
        "encoders maccs →", timeout=TRAIN_TIMEOUT_MS
    )
    expect(history).to_contain_text(re.compile(r"2\s.*maccs.*\s1\s.*ecfp \+ maccs", re.S))
    page.locator("#run-history").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "n2-history.png"), full_page=True)

    # reload run 1: Predict uses its model again
    page.locator("#reload-run-number input").fill("1")
    page.click("#reload-run")
    expect(page.locator("#reload-status")).to_contain_text("Reloaded run 1")
    _tab(page, "4 · Predict")
    expect(page.locator("#predict-model-note")).to_contain_text("ecfp + maccs → rf")

    # an uploaded table keeps every column; a bad row keeps its name and SMILES
    path = tmp_path / "new.csv"
    pd.DataFrame(
        {
            "Compound ID": ["aspirin", "broken"],
            "SMILES": ["CC(=O)Oc1ccccc1C(=O)O", "C1CC("],
            "batch": ["b-17", "b-18"],
        }
    ).to_csv(path, index=False)
    _upload(page, "#predict-upload", path)
    page.click("#predict-button")
    expect(page.locator("#predict-status")).to_contain_text("2 molecules predicted")
    table = page.locator("#predict-table")
    for text in ("Compound ID", "batch", "b-18", "broken", "C1CC(", "unparsable"):
        expect(table).to_contain_text(text)
    page.screenshot(path=str(artifacts / "n3-predict-upload.png"), full_page=True)


def test_test_file_map_colours_and_classification_plots(page, artifacts: Path, smiles, tmp_path):
    from conftest_helpers import logp

    mols = (smiles * 4)[:120]
    y = (logp(mols) > 1.5).astype(int)
    train = pd.DataFrame({"smiles": mols[:90], "active": y[:90]})
    test = pd.DataFrame({"SMILES": mols[90:], "active": y[90:]})
    train.to_csv(tmp_path / "cls_train.csv", index=False)
    test.to_csv(tmp_path / "cls_test.csv", index=False)
    _upload(page, "#upload-data", tmp_path / "cls_train.csv")
    expect(page.locator("#split-status")).to_contain_text("Split: random")
    _upload(page, "#upload-test", tmp_path / "cls_test.csv")
    expect(page.locator("#data-status")).to_contain_text("30 test rows added")
    expect(page.locator("#split-status")).to_contain_text("Split: as provided")
    expect(page.locator("#split-status")).to_contain_text("30 test")
    page.screenshot(path=str(artifacts / "n4-test-file.png"), full_page=True)

    _fast_encoders(page, keep=("maccs",))
    page.get_by_label("t-SNE").check()
    page.click("#draw-map")
    note = page.locator("#map-note")
    expect(note).to_contain_text("t-SNE of the fused representation")
    expect(note).to_contain_text("viridis")

    _tab(page, "3 · Learn")
    _choose_rf(page)
    page.locator("#hp-field-0 input").fill("30")
    page.click("#train-button")
    expect(page.locator("#train-summary")).to_contain_text("ROC-AUC", timeout=TRAIN_TIMEOUT_MS)
    plots = page.locator("#learn-plots")
    expect(plots.locator("img").first).to_be_visible()
    page.screenshot(path=str(artifacts / "n4b-classification.png"), full_page=True)
    html = plots.inner_html()
    for name in ("roc_curve_0.png", "pr_curve_0.png", "calibration_0.png"):
        assert name in html, name


def test_stopped_generation_keeps_the_ranking_with_novelty_and_seed(page, artifacts: Path):
    try:
        import matfuse.generate.api  # noqa: F401
    except ImportError:
        pytest.skip("matfuse.generate is not installed here")
    _tab(page, "5 · Generate")
    page.get_by_label("Seed SMILES").fill("CC(=O)Oc1ccccc1C(=O)O")
    page.fill("#gen-budget input", "5000")
    page.click("#gen-run")
    status = page.locator("#gen-status")
    expect(status).to_contain_text(re.compile(r"Running graph-ga: [1-9]"), timeout=120_000)
    time.sleep(2)
    page.click("#gen-stop")
    expect(status).to_contain_text("Stopped", timeout=120_000)
    expect(status).to_contain_text("what was scored is kept")
    expect(status).to_contain_text(re.compile(r"\d+ of \d+\*?\*? scored molecules are novel"))
    expect(page.locator("#gen-table")).to_contain_text("novel")
    expect(page.locator("#gen-gallery img").first).to_be_visible()
    expect(page.locator("#gen-download")).to_be_visible()
    compare = page.locator("#gen-compare")
    for text in ("seed", "QED", "SA", "logP", "MW", "similarity to seed", "median of top"):
        expect(compare).to_contain_text(text)
    compare.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "n5-generate-stopped.png"), full_page=True)
