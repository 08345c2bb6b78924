import pytest

pytest.importorskip("pymatgen")

from matfuse.materials.symmetry import (  # noqa: E402
    CRYSTAL_SYSTEMS,
    analyze_symmetry,
    crystal_system_onehot,
    get_symmetry,
)


def test_known_space_groups(zoo):
    table = analyze_symmetry(zoo)
    assert table.numbers == [225, 225, 225, 221, 221, 221, 227, 227, 229, 229, 186, 136]
    assert table.symbols[0] == "Fm-3m" and table.symbols[3] == "Pm-3m"
    assert table.crystal_systems[10] == "hexagonal" and table.crystal_systems[11] == "tetragonal"
    assert table.info[0].n_operations == 48 and table.info[0].point_group == "m-3m"
    assert table.valid.all()


def test_tolerances_are_parameters(srtio3):
    distorted = srtio3.copy()
    distorted.translate_sites([1], [0.0, 0.0, 0.02 / 3.905], frac_coords=True)  # Ti off by 0.02 Å
    assert get_symmetry(distorted, symprec=0.1).number == 221
    tight = get_symmetry(distorted, symprec=1e-3)
    assert tight.number == 99 and tight.crystal_system == "tetragonal"  # P4mm


def test_invalid_rows_keep_their_parse_error(nacl):
    table = analyze_symmetry([nacl, "garbage", None])
    assert table.numbers == [225, None, None]
    assert table.errors[1].startswith("unrecognised structure format")
    assert table.n_invalid == 2
    assert table.number_array()[1] != table.number_array()[1]  # NaN
    assert table.metadata == {"symprec": 0.1, "angle_tolerance": 5.0}


def test_crystal_system_onehot():
    assert crystal_system_onehot("cubic").tolist() == [0, 0, 0, 0, 0, 0, 1]
    assert crystal_system_onehot(None).sum() == 0
    assert len(CRYSTAL_SYSTEMS) == 7
