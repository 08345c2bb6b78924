"""The UI's materials paths without a browser: zips, bundled sets, the structure view, kinds.

Structures are built in code with pymatgen (tests never depend on downloaded or shared data);
training uses tiny forests on the fast encoders (``composition``, ``structure-descriptors``).
"""

from __future__ import annotations

import json
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")
pytest.importorskip("pymatgen", reason="the materials paths need the materials extra")

from pymatgen.core import Lattice, Structure  # noqa: E402

from matfuse.app import data_tab, data_views, predict_tab, represent_tab  # noqa: E402
from matfuse.app.crystal_view import (  # noqa: E402
    render_structure,
    summarize_structure,
    write_glb,
)
from matfuse.app.datasets import BUNDLED, datasets_of_kind  # noqa: E402
from matfuse.app.examples import (  # noqa: E402
    BROKEN_ID,
    EWALD_TARGET,
    FORMATION_TARGET,
    example_zip,
    formation_enthalpies,
    prototype_structures,
)
from matfuse.app.kinds import element_choices, splitter_names  # noqa: E402
from matfuse.app.state import SessionState  # noqa: E402
from matfuse.app.training import train_model  # noqa: E402
from matfuse.app.uploads import (  # noqa: E402
    PATH_REFUSED,
    UploadError,
    read_structure_zip,
    read_upload_table,
    table_from_frame,
    validation_message,
)


def _nacl(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _cif(structure: Structure) -> str:
    return str(structure.to(fmt="cif"))


def _link(name: str, target: str) -> tuple[zipfile.ZipInfo, str]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


# ------------------------------------------------------------------------------- zips


def test_zip_rows_are_files_and_unsafe_members_are_skipped(tmp_path: Path):
    archive = tmp_path / "upload.zip"
    poscar = _nacl().to(fmt="poscar")
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("nacl.cif", _cif(_nacl()))
        z.writestr("sub/POSCAR", poscar)
        z.writestr("../escape.cif", _cif(_nacl()))
        z.writestr("/etc/abs.cif", _cif(_nacl()))
        z.writestr("__MACOSX/._nacl.cif", "junk")
        z.writestr(".hidden.cif", "junk")
        z.writestr("readme.txt", "not a structure")
        z.writestr("big.cif", "x" * 2000)
        z.writestr("latin1.cif", "data_\xe9".encode("latin-1"))
        z.writestr(*_link("link.cif", "/etc/passwd"))
        z.writestr("empty_dir/", "")
    before = sorted(p.name for p in tmp_path.iterdir())
    uploaded = read_structure_zip(archive, max_member_bytes=1500)
    frame = uploaded.frame
    assert list(frame["file"]) == ["nacl.cif", "sub/POSCAR", "big.cif", "latin1.cif"]
    assert "data_" in frame["structure"].iloc[0]
    assert pd.isna(frame["structure"].iloc[2]) and "larger than" in frame["_read_error"].iloc[2]
    assert "not UTF-8" in frame["_read_error"].iloc[3]
    notes = " ".join(uploaded.notes)
    assert "4 structure files" in notes
    assert "2 unsafe path" in notes and "1 a link" in notes and "2 hidden files" in notes
    assert "1 other file types" in notes
    # read in memory: nothing was written next to the upload (or anywhere else)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path.parent / "escape.cif").exists()

    table = table_from_frame(frame, uploaded.input_col, None, uploaded.kind)
    assert table.parsed.formulas[:2] == ["NaCl", "NaCl"]
    assert table.errors[2].startswith("file larger than")
    assert "2 of 4 rows" in validation_message(table)


def test_zip_labels_csv_is_merged_on_file_names(tmp_path: Path):
    archive = tmp_path / "labelled.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.cif", _cif(_nacl(5.5)))
        z.writestr("b.cif", _cif(_nacl(5.7)))
        z.writestr("c.cif", _cif(_nacl(5.9)))
        z.writestr("labels.csv", "name,energy,note\na,1.0,x\nb.cif,2.0,y\n")
    uploaded = read_upload_table(archive)
    frame = uploaded.frame
    assert uploaded.kind == "structure"
    assert frame["energy"].tolist()[:2] == [1.0, 2.0] and np.isnan(frame["energy"].iloc[2])
    assert "matched on `name`" in " ".join(uploaded.notes)
    assert "for 2 of 3 files" in " ".join(uploaded.notes)


def test_zip_limits_and_bad_zips(tmp_path: Path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(4):
            z.writestr(f"{i}.cif", "data_x\n" + "0" * 4000)
    with pytest.raises(UploadError, match="unpacks to more than"):
        read_structure_zip(bomb, max_total_bytes=10_000)
    with pytest.raises(UploadError, match="entries"):
        read_structure_zip(bomb, max_members=3)
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK not really")
    with pytest.raises(UploadError, match="not a readable zip"):
        read_upload_table(fake)
    only_text = tmp_path / "text.zip"
    with zipfile.ZipFile(only_text, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(UploadError, match="holds no structure files"):
        read_upload_table(only_text)


def test_single_structure_file_upload(tmp_path: Path):
    path = tmp_path / "NaCl.cif"
    path.write_text(_cif(_nacl()))
    uploaded = read_upload_table(path)
    assert uploaded.kind == "structure" and uploaded.frame["file"].tolist() == ["NaCl.cif"]


def test_paths_in_an_uploaded_structure_column_are_never_read(tmp_path: Path):
    on_server = tmp_path / "secret.cif"
    on_server.write_text(_cif(_nacl()))
    frame = pd.DataFrame({"cif": [_cif(_nacl()), str(on_server)], "y": [1.0, 2.0]})
    table = table_from_frame(frame, None, ["y"], "auto")
    assert table.errors[0] is None and table.errors[1] == PATH_REFUSED
    with pytest.raises(UploadError, match="No row of column 'cif' holds a usable structure"):
        table_from_frame(frame.iloc[1:], None, None, "structure")


# ------------------------------------------------------------------- bundled sets


def test_bundled_sets_load_with_their_kind():
    kinds = {d.name: d.kind for d in BUNDLED.values()}
    assert {"molecule", "composition", "structure"} <= set(kinds.values())
    (compositions,) = datasets_of_kind("composition")
    table, provided = compositions.load()
    assert provided is None and table.input_type == "composition"
    assert len(table) == 2135 and table.parsed.n_invalid == 0
    assert table.targets == [FORMATION_TARGET]
    values = table.target_matrix()[:, 0]
    assert -5 < values.min() < values.max() < 1  # eV/atom, not eV per formula unit
    (structures,) = datasets_of_kind("structure")
    table, _ = structures.load()
    assert table.input_type == "structure" and table.input_col == "cif"
    assert table.parsed.n_invalid == 1
    broken = int(np.flatnonzero(~np.asarray(table.parsed.valid))[0])
    assert table.frame["id"].iloc[broken] == BROKEN_ID
    assert "overlapping atoms" in table.errors[broken]
    assert "synthetic" in structures.description.lower()


def test_example_sets_are_generated_from_installed_packages(tmp_path: Path):
    protos = prototype_structures()
    assert set(protos["prototype"]) >= {"rocksalt", "perovskite", "rutile", "wurtzite"}
    assert protos[EWALD_TARGET].notna().sum() == len(protos) - 1
    assert formation_enthalpies()["formula"].is_unique
    path = example_zip(tmp_path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "labels.csv" in names and sum(n.endswith(".cif") for n in names) >= 4


# ------------------------------------------------------------------ structure view


def test_structure_summary_image_and_3d_model(tmp_path: Path):
    summary = summarize_structure(_nacl())
    assert summary.reduced_formula == "NaCl" and summary.space_group == "Fm-3m (No. 225)"
    assert summary.crystal_system == "cubic" and summary.a == pytest.approx(5.64)
    text = summary.markdown("NaCl")
    assert "Fm-3m" in text and "a = 5.640 Å" in text and "g/cm³" in text

    png = render_structure(_nacl(), tmp_path / "cell.png")
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) >= 300
    glb = write_glb(_nacl(), tmp_path / "cell.glb").read_bytes()
    magic, version, length = struct.unpack("<4sII", glb[:12])
    assert magic == b"glTF" and version == 2 and length == len(glb)
    json_length, chunk = struct.unpack("<I4s", glb[12:20])
    gltf = json.loads(glb[20 : 20 + json_length])
    assert chunk == b"JSON" and gltf["asset"]["version"] == "2.0"
    position = gltf["accessors"][0]
    # 4 Na + 4 Cl in the conventional cell plus their images on faces, edges and corners
    assert position["count"] > 8 * 100 and len(position["max"]) == 3


@pytest.fixture
def structure_session():
    frame = prototype_structures()
    s = SessionState()
    s.set_table(table_from_frame(frame, "cif", [EWALD_TARGET], "structure"), "prototypes")
    yield s
    s.cleanup()


def test_structure_view_for_rows(structure_session):
    text, image, model = data_views.structure_view(structure_session, 1)
    assert "Row 1 · rocksalt-LiF" in text and "Fm-3m (No. 225)" in text
    assert Path(image).is_file() and Path(model).is_file()
    broken = len(structure_session.table)
    text, image, _ = data_views.structure_view(structure_session, broken)
    assert "overlapping atoms" in text and image is None
    assert "does not exist" in data_views.structure_view(structure_session, 10_000)[0]
    composition = SessionState()
    composition.set_table(
        table_from_frame(pd.DataFrame({"formula": ["NaCl", "KBr"]}), None, None, None), "f"
    )
    assert "holds compositions" in data_views.structure_view(composition, 1)[0]


# ---------------------------------------------------------------- kinds and splits


def test_split_and_encoder_choices_follow_the_kind():
    molecule, composition, structure = (
        splitter_names(k) for k in ("molecule", "composition", "structure")
    )
    assert {"scaffold", "cluster"} <= set(molecule) and "spacegroup" not in molecule
    assert {"element", "chemsys"} <= set(composition) and "spacegroup" not in composition
    assert {"spacegroup", "element", "chemsys"} <= set(structure) and "scaffold" not in structure
    assert structure[0] == "predefined" and structure[1] == "random"
    groups = represent_tab.encoder_groups()
    modalities = list(groups)
    names = [[v for _, v in choices] for choices in groups.values()]
    updates = represent_tab.kind_updates("structure", modalities, names)
    by_modality = dict(zip(modalities, updates, strict=True))
    assert by_modality["structure"]["visible"] and by_modality["composition"]["visible"]
    assert by_modality["smiles"] == {"__type__": "update", "visible": False, "value": []}
    assert by_modality["structure"]["value"] == ["structure-descriptors", "chgnet"]  # the default
    assert by_modality["composition"]["value"] == ["composition"]


def test_element_choice_prefers_a_test_sized_element():
    frame = pd.DataFrame({"formula": ["NaCl", "KCl", "NaBr", "KBr", "LiF", "NaF", "CsI", "KI"]})
    table = table_from_frame(frame, None, None, "composition")
    choices, default = element_choices(table.parsed, test_share=0.25)
    assert choices[0][1] in {"Na", "K"} and "of 8 rows" in choices[0][0]
    assert default in {"Cl", "Br", "F", "I"}  # two of eight rows each: a quarter


# ----------------------------------------------------------------------- workflows


def test_composition_workflow_element_split_train_predict():
    frame = formation_enthalpies().head(300)
    s = SessionState()
    s.set_table(table_from_frame(frame, None, [FORMATION_TARGET], None), "formation")
    assert s.kind == "composition"
    text = data_tab.apply_choices(s, "formula", [FORMATION_TARGET], "element", element="O")
    assert "Split: element" in text and "held-out element O" in text
    test_rows = s.split.test
    assert all("O" in {e.symbol for e in s.table.parsed.objects[i].elements} for i in test_rows)
    assert "Split: chemsys" in data_tab.apply_choices(s, "formula", [FORMATION_TARGET], "chemsys")
    result = train_model(s, ["composition"], model="rf", params={"n_estimators": 20})
    assert "Test RMSE" in result.summary and "compositions fitted" in result.summary
    assert s.model.input_type == "composition"
    inputs, names = predict_tab.parse_pasted_for("composition", "Fe2O3 hematite\nNaCl\nXx2O bad")
    table = predict_tab.predict_frame(s, inputs, names)
    assert np.isfinite(table.loc[0, f"pred_{FORMATION_TARGET}"])
    assert f"std_{FORMATION_TARGET}" in table
    assert table.loc[2, "input"] == "Xx2O" and "unknown element" in table.loc[2, "error"]
    assert predict_tab.result_gallery(s, inputs, table) == []
    assert "from **compositions**" in predict_tab.model_note(s)
    with pytest.raises(UploadError, match="at least one composition"):
        predict_tab.predict_frame(s, [], [])
    s.cleanup()


def test_structure_workflow_spacegroup_split_train_predict_zip(structure_session, tmp_path):
    s = structure_session
    text = data_tab.apply_choices(s, "cif", [EWALD_TARGET], "spacegroup")
    assert "Split: spacegroup" in text
    from matfuse.materials.symmetry import analyze_symmetry

    groups = analyze_symmetry(s.table.parsed).numbers
    train_groups = {groups[i] for i in s.split.fit_rows}
    assert not train_groups & {groups[i] for i in s.split.test}
    result = train_model(
        s,
        ["composition", "structure-descriptors"],
        model="rf",
        params={"n_estimators": 20},
        compare=False,
    )
    assert "structures fitted" in result.summary
    assert set(result.metrics["split"]) >= {"test (held out)"}

    archive = example_zip(tmp_path)
    inputs, names, errors = predict_tab.read_inputs(str(archive), "structure")
    table = predict_tab.predict_frame(s, inputs, names)
    assert list(table["name"]) == names and "truncated.cif" in names
    bad = names.index("truncated.cif")
    assert "unparsable CIF" in table.loc[bad, "error"]
    assert table.drop(index=bad)[f"pred_{EWALD_TARGET}"].notna().all()
    assert len(predict_tab.result_gallery(s, inputs, table)) == len(names) - 1
    shown = predict_tab.shown_frame(table, "structure")
    assert shown["input"].iloc[0].startswith("data_")
    # a single CIF pasted as text
    pasted, pasted_names = predict_tab.parse_pasted_for("structure", _cif(_nacl()))
    one = predict_tab.predict_frame(s, pasted, pasted_names)
    assert one.loc[0, "formula"] == "NaCl" and pd.isna(one.loc[0, "error"])
    with pytest.raises(UploadError, match="whole CIF"):
        predict_tab.parse_pasted_for("structure", "/etc/passwd")
    csv = tmp_path / "formulas.csv"
    csv.write_text("formula\nNaCl\n")
    with pytest.raises(UploadError):
        predict_tab.read_inputs(str(csv), "structure")


def test_loading_and_changing_the_kind_in_the_data_tab(tmp_path: Path):
    s = SessionState()
    out = data_tab.load_bundled("Prototype crystals (synthetic)", s)
    assert len(out) == data_tab.N_LOAD_OUTPUTS
    assert out[1]["value"] == "structure" and "Fm-3m" in out[8]
    assert (
        out[4]["value"] == "random"
        and ("space group (no test space group in train)", "spacegroup") in out[4]["choices"]
    )
    # a table whose formulas sit in a column the detection takes for names
    path = tmp_path / "materials.csv"
    pd.DataFrame({"material": ["NaCl", "KBr", "MgO"], "y": [1.0, 2.0, 3.0]}).to_csv(path)
    out = data_tab.load_upload(str(path), s, "composition")
    assert s.kind == "composition" and "3 rows** of compositions" in out[0]
    out = data_tab.change_kind("structure", s)
    assert out[0].startswith("**Input kind not changed.**") and s.kind == "composition"
    rejected = data_tab.load_upload(str(tmp_path / "missing.csv"), s, "auto")
    assert rejected[0].startswith("**Upload rejected.**") and s.kind == "composition"
    s.cleanup()
