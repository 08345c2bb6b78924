"""End to end in a real headless browser: load, represent, train, predict, download.

Screenshots of every step go to ``tests/app/artifacts/`` (git-ignored). The time from the
click on *Train* to the metric on screen is printed and written to ``timings.json``.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

expect = pytest.importorskip("playwright.sync_api").expect

TRAIN_TIMEOUT_MS = 300_000


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _load_demo(page) -> None:
    page.click("#load-data")
    expect(page.locator("#data-status")).to_contain_text("1,282 rows")
    expect(page.locator("#split-status")).to_contain_text("Split: as provided")


def test_full_workflow(page, artifacts: Path, capsys, tmp_path: Path):
    # Data: the bundled demo set, split as provided
    _load_demo(page)
    expect(page.locator("#split-status")).to_contain_text("1,025 train")
    expect(page.locator("#preview")).to_contain_text("n-pentane")
    page.screenshot(path=str(artifacts / "1-data.png"), full_page=True)

    # Represent: two fast encoders, then the latent map
    _tab(page, "2 · Represent")
    boxes = page.locator("#encoders-smiles")
    for name in ("ecfp-count", "rdkit2d-fast"):
        boxes.locator(f"input[name='{name}']").uncheck()
    for name in ("ecfp", "maccs"):
        boxes.locator(f"input[name='{name}']").check()
    expect(boxes).to_contain_text("chemnet · 512-d · pretrained")
    page.click("#draw-map")
    expect(page.locator("#map-note")).to_contain_text("PCA of the fused representation")
    plot = page.locator("#latent-map svg").first
    expect(plot).to_be_visible()
    # mouse.* works in viewport coordinates and does not scroll: once the pretrained encoders
    # made the checkbox lists longer, the map sat below the fold and the drag hit nothing
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    assert box is not None
    # brush across part of the map: the molecules in that range are drawn below it
    y = box["y"] + box["height"] * 0.5
    assert 0 <= box["y"] and y < page.viewport_size["height"]  # on screen, or the drag is lost
    page.mouse.move(box["x"] + box["width"] * 0.15, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    gallery = page.locator("#map-depictions")
    expect(gallery.locator("img").first).to_be_visible()
    expect(gallery).to_contain_text("molecules with component 1 in")
    expect(gallery).to_contain_text(re.compile(r"#\d+ · SOL -?\d"))  # row and target value
    page.screenshot(path=str(artifacts / "2-represent.png"), full_page=True)
    # click one molecule: it is drawn first, followed by its neighbours on the map
    point = page.locator("#latent-map g.mark-symbol path").nth(0).bounding_box()
    assert point is not None
    page.mouse.click(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    expect(gallery).to_contain_text(re.compile(r"Molecule #\d+ \(first\) and its 11 nearest"))
    expect(gallery.locator("img").nth(11)).to_be_visible()
    page.screenshot(path=str(artifacts / "2b-represent-click.png"), full_page=True)

    # Learn: random forest with fewer trees, train, wait for the metric
    _tab(page, "3 · Learn")
    expect(page.locator("#learn-ready")).to_contain_text("ecfp + maccs")
    page.locator("#model-choice input").click()
    page.get_by_role("option", name=re.compile(r"^rf ")).click()
    editor = page.locator("#hyperparameters .cm-content")
    expect(editor).to_contain_text("n_estimators")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text('{"n_estimators": 100}')
    start = time.perf_counter()
    page.click("#train-button")
    expect(page.locator("#train-summary")).to_contain_text("Test RMSE", timeout=TRAIN_TIMEOUT_MS)
    seconds = time.perf_counter() - start
    expect(page.locator("#metrics-table")).to_contain_text("test (held out)")
    expect(page.locator("#comparison-table")).to_contain_text("fused (saved model)")
    expect(page.locator("#train-summary")).to_contain_text("ecfp + maccs")
    expect(page.locator("#learn-plots img").first).to_be_visible()
    page.screenshot(path=str(artifacts / "3-learn.png"), full_page=True)
    timing = {"train_to_results_s": round(seconds, 1), "encoders": "ecfp+maccs", "model": "rf-100"}
    (artifacts / "timings.json").write_text(json.dumps(timing, indent=2))
    with capsys.disabled():
        print(f"\n[e2e] demo dataset, click 'Train' → metrics on screen: {seconds:.1f} s")

    # Predict: paste SMILES (one broken), see predictions, download CSV and model
    _tab(page, "4 · Predict")
    expect(page.locator("#predict-model-note")).to_contain_text("ecfp + maccs → rf")
    page.fill("#predict-smiles textarea", "CC(=O)Nc1ccc(O)cc1 paracetamol\nC1CC( broken")
    page.click("#predict-button")
    expect(page.locator("#predict-status")).to_contain_text("2 molecules predicted")
    expect(page.locator("#predict-table")).to_contain_text("paracetamol")
    expect(page.locator("#predict-gallery img").first).to_be_visible()
    page.screenshot(path=str(artifacts / "4-predict.png"), full_page=True)

    with page.expect_download() as info:
        page.click("#download-csv")
    csv_path = tmp_path / "predictions.csv"
    info.value.save_as(csv_path)
    result = pd.read_csv(csv_path)
    assert list(result["name"]) == ["paracetamol", "broken"]
    assert pd.notna(result.loc[0, "pred_SOL"]) and pd.notna(result.loc[0, "std_SOL"])
    assert "unparsable" in result.loc[1, "error"]

    with page.expect_download() as info:
        page.click("#download-model")
    zip_path = tmp_path / "model.zip"
    info.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        config = json.loads(archive.read("matfuse.json"))
    assert config["params"]["encoders"] == ["ecfp", "maccs"]
    assert config["target_names"] == ["SOL"]

    # Generate (when installed): the model just trained is offered as a design target
    if not _generation_installed():
        return
    _tab(page, "5 · Generate")
    expect(page.locator("#gen-model-note")).to_contain_text("predicting SOL")
    expect(page.locator("#gen-model-target input")).to_have_value("SOL")
    expect(page.locator("#gen-model-min input")).not_to_have_value("0")  # data-based window
    page.locator("#gen-qed input").uncheck()
    page.locator("#gen-model input").check()
    page.fill("#gen-budget input", "50")
    page.click("#gen-run")
    expect(page.locator("#gen-status")).to_contain_text("Done: 50 molecules", timeout=120_000)
    expect(page.locator("#gen-table")).to_contain_text("pred_SOL")


def _generation_installed() -> bool:
    try:
        import matfuse.generate.api  # noqa: F401
    except ImportError:
        return False
    return True


def _upload(page, path: Path) -> None:
    page.locator("#upload-data input[type=file]").set_input_files(str(path))


def test_bad_uploads_give_clear_messages_and_the_ui_keeps_working(
    page, artifacts: Path, tmp_path: Path, smiles: list[str]
):
    malformed = tmp_path / "malformed.csv"
    malformed.write_text("smiles,y\nCCO,1.0\nCCN,2.0,3.0,4.0\n")
    _upload(page, malformed)
    status = page.locator("#data-status")
    expect(status).to_contain_text("Upload rejected")
    expect(status).to_contain_text("line 3 has 4 fields but the header has 2")
    page.screenshot(path=str(artifacts / "5-malformed-upload.png"), full_page=True)
    _load_demo(page)  # the rejected file left the page usable

    page.reload()
    mixed = tmp_path / "mixed.csv"
    good = (smiles * 2)[:70]
    pd.DataFrame({"smiles": good + ["C1CC(", "xyz", "c1cccc1"] * 10, "y": range(100)}).to_csv(
        mixed, index=False
    )
    _upload(page, mixed)
    expect(status).to_contain_text("30 of 100 rows (30%)")
    expect(page.locator("#split-status")).to_contain_text("Split: random")
    page.get_by_role("tab", name="Rows with problems").click()
    expect(page.locator("#problems")).to_contain_text("unparsable SMILES")
    page.screenshot(path=str(artifacts / "6-invalid-smiles.png"), full_page=True)

    page.reload()
    big = tmp_path / "big.csv"
    line = "CCO," + "1" * 1000 + "\n"
    with open(big, "w") as handle:
        handle.write("smiles,y\n")
        handle.write(line * (50 * 1024 * 1024 // len(line) + 1))
    _upload(page, big)
    # refused in the browser before any byte is sent; the message names the limit
    toast = page.locator(".toast-body").filter(has_text="exceed the maximum allowed size")
    expect(toast).to_contain_text("20.0 Mb")
    expect(toast).to_contain_text("big.csv")
    page.wait_for_timeout(1000)  # let the toast finish sliding in before the screenshot
    page.screenshot(path=str(artifacts / "7-50mb-upload.png"))
    # the server still serves and this very page still works
    _load_demo(page)


def test_sessions_are_isolated_and_training_does_not_block_others(
    chromium_browser, app_url: str, artifacts: Path, capsys
):
    pages = []
    for _ in range(2):
        context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
        p = context.new_page()
        p.set_default_timeout(60_000)
        p.goto(app_url)
        p.wait_for_selector("#load-data")
        pages.append(p)
    first, second = pages
    try:
        _load_demo(first)
        _tab(first, "2 · Represent")
        for name in ("ecfp-count", "rdkit2d-fast"):
            first.locator(f"#encoders-smiles input[name='{name}']").uncheck()
        _tab(first, "3 · Learn")
        first.locator("#model-choice input").click()
        first.get_by_role("option", name=re.compile(r"^rf ")).click()
        expect(first.locator("#hyperparameters .cm-content")).to_contain_text("n_estimators")
        first.locator("#hyperparameters .cm-content").click()
        first.keyboard.press("Control+A")
        first.keyboard.insert_text('{"n_estimators": 300}')
        first.click("#train-button")

        # while the first user trains, the second one is served
        start = time.perf_counter()
        _load_demo(second)
        waited = time.perf_counter() - start
        busy = "Test RMSE" not in first.locator("#train-summary").inner_text()
        with capsys.disabled():
            print(f"\n[e2e] 2nd session loaded data in {waited:.1f} s; 1st still training: {busy}")

        expect(first.locator("#train-summary")).to_contain_text(
            "Test RMSE", timeout=TRAIN_TIMEOUT_MS
        )
        # ... and never sees the first user's model
        _tab(second, "4 · Predict")
        expect(second.locator("#predict-model-note")).to_contain_text("No model yet")
        second.fill("#predict-smiles textarea", "CCO")
        second.click("#predict-button")
        expect(second.locator("#predict-status")).to_contain_text("Train a model")
        second.screenshot(path=str(artifacts / "8-second-session.png"), full_page=True)
    finally:
        for p in pages:
            p.context.close()


def test_generate_qed_with_a_live_best_so_far(page, artifacts: Path, capsys, tmp_path: Path):
    if not _generation_installed():
        pytest.skip("matfuse.generate is not installed here; the Generate tab is not tested")
    _tab(page, "5 · Generate")
    expect(page.locator("#gen-qed input")).to_be_checked()
    expect(page.locator("#gen-strategy input")).to_have_value(re.compile(r"^graph-ga"))
    status = page.locator("#gen-status")
    # a long run streams its progress and can be stopped: the page is not frozen meanwhile
    page.fill("#gen-budget input", "5000")
    page.click("#gen-run")
    expect(status).to_contain_text("Running graph-ga")
    page.click("#gen-stop")
    expect(status).to_contain_text("Stopped after")
    page.fill("#gen-budget input", "200")
    start = time.perf_counter()
    page.click("#gen-run")
    expect(status).to_contain_text(re.compile(r"Running|Done"))
    expect(page.locator("#gen-best img")).to_be_visible()  # best-so-far depiction
    expect(status).to_contain_text("Done: 200 molecules scored", timeout=TRAIN_TIMEOUT_MS)
    seconds = time.perf_counter() - start
    expect(page.locator("#gen-curve svg").first).to_be_visible()  # best score vs calls
    expect(page.locator("#gen-gallery img").first).to_be_visible()
    table = page.locator("#gen-table")
    expect(table).to_contain_text("score")
    expect(table).to_contain_text("qed")
    page.screenshot(path=str(artifacts / "9-generate.png"), full_page=True)
    with capsys.disabled():
        print(f"\n[e2e] Generate: QED, graph-ga, budget 200 → table on screen: {seconds:.1f} s")

    with page.expect_download() as info:
        page.click("#gen-download")
    csv_path = tmp_path / "candidates.csv"
    info.value.save_as(csv_path)
    result = pd.read_csv(csv_path)
    assert len(result) == 200 and list(result["rank"][:3]) == [1, 2, 3]
    assert result["score"].is_monotonic_decreasing and result["qed"].iloc[0] > 0.8
