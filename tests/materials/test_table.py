import pandas as pd
import pytest

pytest.importorskip("pymatgen")

from matfuse.inputs import as_batch, detect_input_kind, load_input_table  # noqa: E402
from matfuse.materials.compositions import ParsedCompositions  # noqa: E402
from matfuse.materials.structures import ParsedStructures  # noqa: E402


def test_cif_column_is_read_as_structures_and_broken_rows_are_kept(tmp_path, nacl, srtio3):
    frame = pd.DataFrame(
        {
            "material_id": [1, 2, 3, 4],
            "cif": [nacl.to(fmt="cif"), "data_bad\nnope", srtio3.to(fmt="cif"), None],
            "formula": ["NaCl", "X", "SrTiO3", "MgO"],
            "heat": [1.0, 2.0, "n/a", 4.0],
        }
    )
    path = tmp_path / "crystals.csv"
    frame.to_csv(path, index=False)
    table = load_input_table(path, targets=["heat"])
    assert (table.input_type, table.input_col) == ("structure", "cif")  # structures win
    assert isinstance(table.parsed, ParsedStructures) and len(table) == 4
    assert table.parsed.formulas == ["NaCl", None, "SrTiO3", None]
    assert table.errors[1].startswith("unparsable CIF")
    assert table.target_matrix()[:, 0].tolist()[:2] == [1.0, 2.0]
    summary = table.summary()
    assert summary["invalid"] == 2 and summary["labels_per_target"] == {"heat": 3}
    forced = load_input_table(path, input_type="composition")
    assert forced.input_col == "formula" and forced.errors[1] == "unknown element(s): X"


def test_composition_table_duplicates_and_allowed_elements():
    frame = pd.DataFrame({"Composition": ["Fe2O3", "Fe4O6", "NaCl", ""], "y": [1, 2, 3, 4]})
    table = load_input_table(frame, targets=["y"], allowed_elements=["Fe", "O"])
    assert (table.input_type, table.input_col) == ("composition", "Composition")
    assert isinstance(table.parsed, ParsedCompositions)
    assert table.duplicates() == {"Fe2O3": [0, 1]}  # same reduced formula
    assert table.errors[2] == "disallowed element(s): Cl, Na" and table.errors[3] == "empty formula"


def test_detection_by_content_and_explicit_column(nacl):
    frame = pd.DataFrame({"id": ["a", "b"], "text": [nacl.to(fmt="cif"), nacl.to(fmt="poscar")]})
    assert detect_input_kind(frame) == ("structure", "text")
    frame = pd.DataFrame({"name": ["x", "y"], "stuff": ["NaCl", "MgO"]})
    assert detect_input_kind(frame) == ("composition", "stuff")
    assert detect_input_kind(frame, input_col="stuff") == ("composition", "stuff")
    with pytest.raises(ValueError, match="could not find a structure column"):
        detect_input_kind(frame, input_type="structure")
    with pytest.raises(KeyError, match="not found"):
        detect_input_kind(frame, input_col="nope")
    with pytest.raises(ValueError, match="could not find a molecule column"):
        detect_input_kind(frame, input_type="molecule")
    with pytest.raises(KeyError, match="unknown input type 'polymer'"):
        detect_input_kind(frame, input_type="polymer")
    with pytest.raises(KeyError, match="target column"):
        load_input_table(frame, targets=["y"])


def test_raw_values_are_typed_by_their_objects_and_structure_text(nacl):
    assert isinstance(as_batch([nacl, None]), ParsedStructures)
    assert isinstance(as_batch([None, nacl.to(fmt="cif")]), ParsedStructures)
    assert isinstance(as_batch(["NaCl"], "composition"), ParsedCompositions)
    assert isinstance(as_batch(["NaCl"], "structure"), ParsedStructures)
    # a structure batch converts to its compositions; compositions do not make structures
    structures = as_batch([nacl, None])
    comps = as_batch(structures, "composition")
    assert comps.formulas == ["NaCl", None] and comps.errors[1] == structures.errors[1]
    with pytest.raises(TypeError, match="cannot be read as structures"):
        as_batch(comps, "structure")
