"""End to end in a real headless browser: the composition and the crystal-structure workflows.

Each walk goes Data → Represent → Learn → Predict with the bundled example set of its kind
and a small upload made here with pymatgen, and saves a screenshot of every step to
``tests/app/artifacts/`` (git-ignored): ``c*-*.png`` for compositions, ``s*-*.png`` for
structures. Training uses a 50-tree forest on the fast encoders so a walk takes a minute.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

expect = pytest.importorskip("playwright.sync_api").expect
pytest.importorskip("pymatgen", reason="the materials workflows need the materials extra")

TRAIN_TIMEOUT_MS = 300_000
COMPOSITIONS = "Experimental formation enthalpies"
STRUCTURES = "Prototype crystals (synthetic)"


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _choose(page, elem_id: str, option: str | re.Pattern[str]) -> None:
    """Pick an option of a Gradio dropdown by its (start of) label."""
    page.locator(f"#{elem_id} input").click()
    name = option if isinstance(option, re.Pattern) else re.compile("^" + re.escape(option))
    page.get_by_role("option", name=name).click()


def _load_bundled(page, name: str) -> None:
    _choose(page, "bundled-dataset", name)
    page.click("#load-data")


def _train_forest(page, trees: int = 50) -> float:
    _tab(page, "3 · Learn")
    _choose(page, "model-choice", re.compile(r"^rf "))
    editor = page.locator("#hyperparameters .cm-content")
    expect(editor).to_contain_text("n_estimators")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(f'{{"n_estimators": {trees}}}')
    start = time.perf_counter()
    page.click("#train-button")
    expect(page.locator("#train-summary")).to_contain_text("Test RMSE", timeout=TRAIN_TIMEOUT_MS)
    return time.perf_counter() - start


def _cif(structure) -> str:
    return str(structure.to(fmt="cif"))


def _cells() -> dict[str, object]:
    from pymatgen.core import Lattice, Structure

    return {
        "NaCl": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        "CsCl": Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "KCl": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(6.29), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
    }


def test_composition_workflow(page, artifacts: Path, tmp_path: Path, capsys):
    # Data: an upload with one bad formula is previewed with the bad row flagged
    upload = tmp_path / "my-formulas.csv"
    pd.DataFrame(
        {
            "formula": ["Fe2O3", "NaCl", "Xx2O", "MgO", "TiO2", "LiFePO4"],
            "band_gap": [2.2, 8.5, 1.0, 7.8, 3.2, 3.7],
        }
    ).to_csv(upload, index=False)
    page.locator("#upload-data input[type=file]").set_input_files(str(upload))
    status = page.locator("#data-status")
    expect(status).to_contain_text("6 rows")
    expect(status).to_contain_text("of compositions")
    expect(status).to_contain_text("1 of 6 rows")
    expect(page.locator("#input-kind input")).to_have_value("compositions (formulas)")
    expect(page.locator("#preview")).to_contain_text("LiFePO4")
    expect(page.locator("#preview")).to_contain_text("✗ unknown element(s): Xx")
    page.get_by_role("tab", name="Rows with problems").click()
    expect(page.locator("#problems")).to_contain_text("unknown element(s): Xx")
    page.screenshot(path=str(artifacts / "c1-upload-with-a-bad-formula.png"), full_page=True)
    page.get_by_role("tab", name="Preview").click()

    # Data: the bundled experimental formation enthalpies, element hold-out split
    _load_bundled(page, COMPOSITIONS)
    expect(status).to_contain_text("2,135 rows")
    expect(status).to_contain_text("Every row holds a valid composition")
    expect(page.locator("#preview")).to_contain_text("Ag2CO3")
    expect(page.locator("#split-status")).to_contain_text("Split: random")
    _choose(page, "split-choice", "element held out")
    element = page.locator("#split-element")
    expect(element).to_be_visible()
    expect(element.locator("input")).to_have_value(re.compile(r"^O \(406 of 2,135 rows\)"))
    page.click("#apply-split")
    split = page.locator("#split-status")
    expect(split).to_contain_text("Split: element")
    expect(split).to_contain_text("held-out element O")
    expect(split).to_contain_text("406 test rows")
    page.screenshot(path=str(artifacts / "c2-data-element-split.png"), full_page=True)

    # Represent: only composition encoders are offered, the default one ticked
    _tab(page, "2 · Represent")
    expect(page.locator("#represent-kind")).to_contain_text("compositions")
    expect(page.locator("#encoders-smiles")).to_be_hidden()
    boxes = page.locator("#encoders-composition")
    expect(boxes).to_be_visible()
    expect(boxes.locator("input[name='composition']")).to_be_checked()
    page.click("#draw-map")
    expect(page.locator("#map-note")).to_contain_text("2,135 compositions")
    expect(page.locator("#latent-map svg").first).to_be_visible()
    page.screenshot(path=str(artifacts / "c3-represent.png"), full_page=True)

    # Learn: forest on the composition features, metrics and plots
    seconds = _train_forest(page)
    expect(page.locator("#train-summary")).to_contain_text("compositions fitted")
    expect(page.locator("#train-summary")).to_contain_text("element split")
    expect(page.locator("#metrics-table")).to_contain_text("test (held out)")
    expect(page.locator("#learn-plots img").first).to_be_visible()
    page.screenshot(path=str(artifacts / "c4-learn.png"), full_page=True)
    with capsys.disabled():
        print(f"\n[e2e] compositions, element split, click 'Train' → metrics: {seconds:.1f} s")

    # Predict: pasted formulas, one of them broken
    _tab(page, "4 · Predict")
    expect(page.locator("#predict-model-note")).to_contain_text("from compositions")
    page.fill("#predict-smiles textarea", "Fe2O3 hematite\nNaCl rocksalt\nXx2O broken")
    page.click("#predict-button")
    expect(page.locator("#predict-status")).to_contain_text("3 compositions predicted")
    expect(page.locator("#predict-status")).to_contain_text("1 could not be used")
    table = page.locator("#predict-table")
    expect(table).to_contain_text("hematite")
    expect(table).to_contain_text("std_formation_enthalpy")
    expect(table).to_contain_text("unknown element(s): Xx")
    page.screenshot(path=str(artifacts / "c5-predict.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#download-csv")
    csv_path = tmp_path / "predictions.csv"
    info.value.save_as(csv_path)
    result = pd.read_csv(csv_path)
    assert list(result["input"]) == ["Fe2O3", "NaCl", "Xx2O"]
    assert result["pred_formation_enthalpy"].iloc[:2].notna().all()
    assert result["std_formation_enthalpy"].iloc[:2].notna().all()
    assert "unknown element" in result.loc[2, "error"]


def test_structure_workflow(page, artifacts: Path, tmp_path: Path, capsys):
    cells = _cells()
    # Data: a zip of three CIFs, one of them truncated
    archive = tmp_path / "three-cifs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("NaCl.cif", _cif(cells["NaCl"]))
        z.writestr("CsCl.cif", _cif(cells["CsCl"]))
        z.writestr("broken.cif", "data_broken\n_cell_length_a 4.0\n")
    page.locator("#upload-data input[type=file]").set_input_files(str(archive))
    status = page.locator("#data-status")
    expect(status).to_contain_text("3 rows")
    expect(status).to_contain_text("of structures")
    expect(status).to_contain_text("1 of 3 rows")
    expect(status).to_contain_text("3 structure files read from three-cifs.zip")
    expect(page.locator("#preview")).to_contain_text("broken.cif")
    expect(page.locator("#preview")).to_contain_text("✗ unparsable CIF")
    page.get_by_role("tab", name="Structure view").click()
    info = page.locator("#structure-info")
    expect(info).to_contain_text("NaCl")
    expect(info).to_contain_text("Fm-3m (No. 225)")
    expect(info).to_contain_text("a = 5.640 Å")
    expect(page.locator("#structure-image img")).to_be_visible()
    expect(page.locator("#structure-3d canvas")).to_be_visible()  # the rotatable model
    page.locator("#structure-row input").fill("2")
    page.click("#show-structure")
    expect(info).to_contain_text("Pm-3m (No. 221)")
    expect(info).to_contain_text("CsCl.cif")
    expect(page.locator("#split-status")).to_contain_text("labels.csv")
    page.wait_for_timeout(1500)  # let the 3-D viewer draw the new cell
    page.screenshot(path=str(artifacts / "s1-zip-upload-structure-view.png"), full_page=True)

    # Data: the bundled prototype crystals; the broken row is flagged
    _load_bundled(page, STRUCTURES)
    expect(status).to_contain_text("161 rows")
    expect(status).to_contain_text("overlapping atoms (1)")
    expect(info).to_contain_text("rocksalt-LiF")
    expect(info).to_contain_text("Fm-3m")
    page.locator("#structure-row input").fill("130")
    page.click("#show-structure")
    expect(info).to_contain_text("Pm-3m (No. 221)")
    expect(info).to_contain_text("perovskite")
    expect(page.locator("#structure-image img")).to_be_visible()
    page.wait_for_timeout(1500)  # let the 3-D viewer draw the new cell
    page.screenshot(path=str(artifacts / "s2-bundled-structure-view.png"), full_page=True)
    # headless Chromium drops WebGL pixels from full-page shots; the viewer on its own keeps them
    viewer = page.locator("#structure-3d")
    viewer.scroll_into_view_if_needed()
    viewer.screenshot(path=str(artifacts / "s2b-structure-3d-viewer.png"))
    page.get_by_role("tab", name="Rows with problems").click()
    expect(page.locator("#problems")).to_contain_text("broken-on-purpose")
    expect(page.locator("#problems")).to_contain_text("overlapping atoms")

    # Data: space-group split
    _choose(page, "split-choice", "space group")
    page.click("#apply-split")
    expect(page.locator("#split-status")).to_contain_text("Split: spacegroup")
    page.get_by_role("tab", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("rocksalt-LiF")
    page.screenshot(path=str(artifacts / "s3-data-spacegroup-split.png"), full_page=True)

    # Represent: composition and structure encoders, the three defaults ticked (CHGNet too)
    _tab(page, "2 · Represent")
    expect(page.locator("#encoders-smiles")).to_be_hidden()
    structure_boxes = page.locator("#encoders-structure")
    expect(structure_boxes.locator("input[name='structure-descriptors']")).to_be_checked()
    expect(structure_boxes.locator("input[name='chgnet']")).to_be_checked()
    expect(page.locator("#encoders-composition input[name='composition']")).to_be_checked()

    # Learn
    seconds = _train_forest(page)
    summary = page.locator("#train-summary")
    expect(summary).to_contain_text("composition + structure-descriptors")
    expect(summary).to_contain_text("structures fitted")
    expect(summary).to_contain_text("spacegroup split")
    expect(page.locator("#metrics-table")).to_contain_text("test (held out)")
    expect(page.locator("#comparison-table")).to_contain_text("fused (saved model)")
    expect(page.locator("#learn-plots img").first).to_be_visible()
    page.screenshot(path=str(artifacts / "s4-learn.png"), full_page=True)
    with capsys.disabled():
        print(f"\n[e2e] structures, space-group split, click 'Train' → metrics: {seconds:.1f} s")

    # Predict: an uploaded CIF
    _tab(page, "4 · Predict")
    expect(page.locator("#predict-model-note")).to_contain_text("from structures")
    cif = tmp_path / "KCl.cif"
    cif.write_text(_cif(cells["KCl"]))
    page.locator("#predict-upload input[type=file]").set_input_files(str(cif))
    page.click("#predict-button")
    expect(page.locator("#predict-status")).to_contain_text("1 structure predicted")
    table = page.locator("#predict-table")
    expect(table).to_contain_text("KCl.cif")
    expect(table).to_contain_text("std_ewald_energy")
    expect(page.locator("#predict-gallery img").first).to_be_visible()
    page.screenshot(path=str(artifacts / "s5-predict-uploaded-cif.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#download-csv")
    csv_path = tmp_path / "predictions.csv"
    download.value.save_as(csv_path)
    result = pd.read_csv(csv_path)
    assert list(result["name"]) == ["KCl.cif"] and result.loc[0, "formula"] == "KCl"
    assert pd.notna(result.loc[0, "pred_ewald_energy"]) and pd.notna(
        result.loc[0, "std_ewald_energy"]
    )


def test_crystal_structure_prediction_in_the_generate_tab(page, artifacts: Path, tmp_path: Path):
    """Generate → Crystals: NaCl by ion substitution, relaxed with CHGNet, rock salt first."""
    _tab(page, "5 · Generate")
    page.get_by_role("tab", name="Crystals", exact=True).click()
    expect(page.locator("#cgen-formula textarea, #cgen-formula input").first).to_have_value("NaCl")
    _choose(page, "cgen-strategy", "substitution")
    page.fill("#cgen-budget input", "3")
    start = time.perf_counter()
    page.click("#cgen-run")
    status = page.locator("#cgen-status")
    expect(status).to_contain_text("Done: 3 relaxations of NaCl", timeout=TRAIN_TIMEOUT_MS)
    seconds = time.perf_counter() - start
    expect(status).to_contain_text("Fm-3m")
    expect(status).to_contain_text("proxy for a DFT hull")
    expect(page.locator("#cgen-best-info")).to_contain_text("Fm-3m (No. 225)")
    expect(page.locator("#cgen-best img")).to_be_visible()
    expect(page.locator("#cgen-curve svg").first).to_be_visible()
    table = page.locator("#cgen-table")
    expect(table).to_contain_text("substitution:rocksalt")
    page.wait_for_timeout(1500)  # let the plot draw its lines
    page.screenshot(path=str(artifacts / "s7-generate-crystals.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#cgen-download")
    path = tmp_path / "run.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        ranked = pd.read_csv(z.open("candidates.csv"))
        assert sum(n.startswith("cifs/") for n in z.namelist()) == 3
    assert len(ranked) == 3 and ranked["spacegroup"].iloc[0] == "Fm-3m"
    assert ranked["energy_per_atom"].iloc[0] == ranked["energy_per_atom"].min()
    print(f"\n[e2e] Generate crystals: NaCl, substitution, 3 CHGNet relaxations: {seconds:.1f} s")
    # the other task shows its own inputs and the CLI's default strategy for it
    page.get_by_text("Chemical-system search (elements)").click()
    expect(page.locator("#cgen-elements textarea, #cgen-elements input").first).to_be_visible()
    expect(page.locator("#cgen-formula")).to_be_hidden()
    expect(page.locator("#cgen-strategy input")).to_have_value(re.compile(r"^random"))


def test_sampling_a_learned_generator_in_the_generate_tab(page, artifacts: Path, tmp_path: Path):
    """Generate → Crystals → Sample a learned generator: ten de novo cells from perov5."""
    _tab(page, "5 · Generate")
    page.get_by_role("tab", name="Crystals", exact=True).click()
    page.locator("#cgen-task").get_by_text("Sample a learned generator").click()
    expect(page.locator("#cgen-formula")).to_be_hidden()
    expect(page.locator("#csample-model input")).to_have_value("perov5")
    expect(page.locator("#csample-guidance")).to_be_hidden()
    page.fill("#csample-n input", "10")
    start = time.perf_counter()
    page.click("#csample-run")
    status = page.locator("#csample-status")
    expect(status).to_contain_text("Done: 10 structures de novo from perov5", timeout=120_000)
    seconds = time.perf_counter() - start
    expect(status).to_contain_text("valid")
    expect(page.locator("#csample-best img")).to_be_visible()
    expect(page.locator("#csample-best-info")).to_contain_text("First valid structure")
    expect(page.locator("#csample-table")).to_contain_text("diffusion:perov5:de-novo")
    page.screenshot(path=str(artifacts / "s8-sample-crystals.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#csample-download")
    path = tmp_path / "sample.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        table = pd.read_csv(z.open("candidates.csv"))
        assert sum(n.startswith("cifs/") for n in z.namelist()) == 10
    assert len(table) == 10 and table["valid"].dtype == bool
    print(f"\n[e2e] Sample perov5: 10 de novo structures: {seconds:.1f} s")
    # a target the model never learned is one line in the status, not a traceback
    page.fill("#csample-targets textarea", "band_gap=1")
    expect(page.locator("#csample-guidance")).to_be_visible()
    page.click("#csample-run")
    expect(status).to_contain_text("Cannot sample: model has no condition band_gap")
    expect(status).not_to_contain_text("Traceback")
