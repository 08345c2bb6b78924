import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

pytest.importorskip("pymatgen")

from matfuse.encoders import get_encoder, list_encoders  # noqa: E402
from matfuse.materials.structures import parse_structures  # noqa: E402


def test_registry_lists_the_materials_encoders():
    specs = {s.name: s for s in list_encoders()}
    assert specs["composition"].modality == "composition" and specs["composition"].dim == 150
    assert specs["structure-descriptors"].modality == "structure"
    assert specs["structure-descriptors"].dim == 60
    assert specs["chgnet"].modality == "structure" and specs["chgnet"].dim == 65
    assert specs["chgnet"].pretrained and not specs["composition"].pretrained
    assert get_encoder("structure-descriptors:rdf_bins=16").dim == 44
    assert {s.name for s in list_encoders("composition")} == {"composition", "transfer"}


def test_composition_invalid_rows_are_nan_and_valid_rows_finite(nacl):
    enc = get_encoder("composition")
    batch = ["NaCl", "Fe2O3", "Xx2", "", "Fe4O6", nacl, nacl.to(fmt="cif"), "Og2"]
    block = enc.encode_block(batch)
    assert block.values.shape == (8, enc.dim) and block.values.dtype == np.float32
    assert block.valid.tolist() == [True, True, False, False, True, True, True, False]
    assert np.isnan(block.values[~block.valid]).all()
    assert np.isfinite(block.values[block.valid]).all()
    assert block.errors[2] == "unknown element(s): Xx" and "Z > 103" in block.errors[7]
    np.testing.assert_array_equal(block.values[1], block.values[4])  # same fractions
    np.testing.assert_array_equal(block.values[0], block.values[5])  # structure -> composition
    np.testing.assert_array_equal(block.values[0], block.values[6])  # CIF -> composition


def test_composition_features_have_names_and_meaning():
    enc = get_encoder("composition")
    names = list(enc.get_feature_names_out())
    assert len(names) == enc.dim and len(set(names)) == enc.dim
    row = dict(zip(names, enc.transform(["NaCl"])[0], strict=True))
    assert row["mean_Number"] == pytest.approx(14.0)  # (11 + 17) / 2
    assert row["range_Number"] == pytest.approx(6.0)
    assert row["n_elements"] == 2 and row["mean_NValence"] == pytest.approx(4.0)
    single = dict(zip(names, enc.transform(["Si"])[0], strict=True))
    assert single["std_Electronegativity"] == 0 and single["max_ionic_char"] == 0


def test_encoders_work_in_sklearn_pipelines():
    formulas = ["NaCl", "KCl", "MgO", "CaO", "LiF", "NaF"]
    y = np.arange(6, dtype=float)
    pipe = make_pipeline(get_encoder("composition"), Ridge()).fit(formulas, y)
    assert pipe.predict(formulas).shape == (6,)
    twin = clone(get_encoder("structure-descriptors:symprec=0.01"))
    assert twin.symprec == 0.01


def test_structure_descriptors_shapes_nan_rows_and_supercell_invariance(nacl, si, srtio3):
    enc = get_encoder("structure-descriptors")
    supercell = nacl * (2, 1, 1)
    batch = [nacl, si, "garbage", srtio3, supercell, None]
    block = enc.encode_block(batch)
    assert block.values.shape == (6, enc.dim)
    assert block.valid.tolist() == [True, True, False, True, True, False]
    assert np.isfinite(block.values[block.valid]).all()
    np.testing.assert_allclose(block.values[0], block.values[4], rtol=1e-4, atol=1e-5)
    row = dict(zip(enc.get_feature_names_out(), block.values[0], strict=True))
    assert row["spacegroup_number"] == 225 and row["crystal_system_cubic"] == 1
    assert row["mean_effective_cn"] == pytest.approx(6.0, abs=0.1)  # octahedral rock salt
    assert row["min_nn_distance"] == pytest.approx(2.82, abs=1e-3)
    si_row = dict(zip(enc.get_feature_names_out(), block.values[1], strict=True))
    assert si_row["mean_effective_cn"] == pytest.approx(4.0, abs=0.1)  # tetrahedral


def test_structure_descriptors_flag_isolated_atoms(crystals):
    from pymatgen.core import Lattice, Structure

    lonely = Structure(Lattice.cubic(9.5), ["Fe"], [[0, 0, 0]])  # under the volume limit
    block = get_encoder("structure-descriptors").encode_block([lonely, crystals.bcc()])
    assert block.valid.tolist() == [False, True]
    assert block.errors[0].startswith("isolated atom")


def test_structure_encoders_refuse_compositions():
    from matfuse.materials.compositions import parse_compositions

    with pytest.raises(TypeError, match="compositions cannot be read as structures"):
        get_encoder("structure-descriptors").transform(parse_compositions(["NaCl"]))


@pytest.mark.slow
def test_chgnet_embeddings_energies_and_cache(nacl, si, srtio3):
    from pymatgen.core import Lattice, Structure

    enc = get_encoder("chgnet:batch_size=2")
    lonely = Structure(Lattice.cubic(9.5), ["Fe"], [[0, 0, 0]])  # under the volume limit
    parsed = parse_structures([nacl, "not a crystal", si, srtio3, lonely, nacl.to(fmt="cif")])
    block = enc.encode_block(parsed)
    assert block.values.shape == (6, 65)
    assert block.valid.tolist() == [True, False, True, True, False, True]
    assert block.errors[4].startswith("CHGNet failed")
    assert np.isfinite(block.values[block.valid]).all()
    energies = block.values[[0, 2, 3], -1]
    assert -4.5 < energies[0] < -3.0  # NaCl, about -3.7 eV/atom in MPtrj
    assert -6.0 < energies[1] < -4.5  # Si, about -5.4 eV/atom
    np.testing.assert_array_equal(block.values[0], block.values[5])
    assert len(enc._feature_cache) == 4  # three crystals and the failed one, once each
    again = enc.transform([si])
    np.testing.assert_array_equal(again[0], block.values[2])
    assert list(enc.get_feature_names_out())[-1] == "chgnet_energy_per_atom"


@pytest.mark.slow
def test_chgnet_relaxed_embedding_moves_a_strained_crystal_to_its_minimum(nacl):
    strained = nacl.copy()
    strained.scale_lattice(nacl.volume * 1.3)
    plain = get_encoder("chgnet").transform([strained, nacl])
    relaxed = get_encoder("chgnet:relax=true:relax_steps=60").transform([strained, nacl])
    assert plain[0, -1] > plain[1, -1] + 0.03  # the strained cell is higher in energy
    assert abs(relaxed[0, -1] - relaxed[1, -1]) < 0.01  # both relax to the same minimum
