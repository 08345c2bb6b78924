import io
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pymatgen")

from pymatgen.core import Lattice, Structure  # noqa: E402

from matfuse.materials.structures import (  # noqa: E402
    parse_structures,
    structure_hash,
    to_structure,
)


def _same(a: Structure, b: Structure) -> bool:
    return a.matches(b, scale=False) and len(a) == len(b)


def test_objects_and_text_formats_round_trip(nacl, srtio3, si):
    from ase.io import write

    buf = io.StringIO()
    write(buf, si.to_ase_atoms(), format="extxyz")
    items = [nacl, nacl.to(fmt="cif"), srtio3.to(fmt="poscar"), buf.getvalue(), nacl.as_dict()]
    p = parse_structures(items)
    assert p.errors == [None] * 5
    assert p.formulas == ["NaCl", "NaCl", "SrTiO3", "Si", "NaCl"]
    assert _same(p.structures[1], nacl) and _same(p.structures[2], srtio3)
    assert _same(p.structures[3], si)
    np.testing.assert_allclose(p.structures[1].lattice.abc, nacl.lattice.abc, atol=1e-6)
    assert p.keys[0] == p.keys[1] == p.keys[4]  # same structure, same cache key


def test_ase_atoms_and_files(tmp_path, nacl, srtio3):
    from ase.build import bulk, molecule

    nacl.to(filename=str(tmp_path / "nacl.cif"))
    srtio3.to(filename=str(tmp_path / "POSCAR"))
    items = [
        bulk("Cu", "fcc", a=3.6),
        molecule("H2O"),
        str(tmp_path / "nacl.cif"),
        tmp_path / "POSCAR",
        tmp_path / "missing.cif",
    ]
    p = parse_structures(items)
    assert p.formulas[:4] == ["Cu", None, "NaCl", "SrTiO3"]
    assert p.errors[1].startswith("no periodic cell")
    assert p.errors[4].startswith("no such structure file")


def test_broken_cifs_are_row_errors(nacl):
    cif = nacl.to(fmt="cif")
    items = [
        cif[: len(cif) // 2],
        "data_x\nhello world",
        "data_empty\n_cell_length_a 5\n",
        "not a structure at all",
        "",
        None,
        cif,
    ]
    p = parse_structures(items)
    assert p.valid.tolist() == [False] * 6 + [True]
    assert p.errors[0].startswith("unparsable CIF")
    assert p.errors[1].startswith("unparsable CIF")
    assert p.errors[3].startswith("unrecognised structure format")
    assert p.errors[4] == p.errors[5] == "empty structure input"


def test_overlapping_atoms_empty_and_zero_volume_cells(nacl):
    overlap = nacl.copy()
    overlap.append("Na", [0.01, 0.0, 0.0])
    tiny = Structure(Lattice.cubic(0.3), ["Fe"], [[0, 0, 0]])
    flat = Structure(Lattice([[3, 0, 0], [0, 3, 0], [0, 0, 0]]), ["Fe"], [[0, 0, 0]])
    empty = Structure(Lattice.cubic(3), [], [])
    p = parse_structures([overlap, tiny, flat, empty, nacl])
    assert p.errors[0].startswith("overlapping atoms: sites")
    assert "periodic image" in p.errors[1]
    assert p.errors[2].startswith("zero-volume cell")
    assert p.errors[3] == "empty structure (no sites)"
    assert p.errors[4] is None
    # the tolerance is a parameter: 0.05 Å apart passes a 0.01 Å threshold
    close = nacl.copy()
    close.append("Na", [0.01, 0.0, 0.0])
    assert to_structure(close, min_distance=0.01)[1] is None


def test_disorder_and_size_limits(nacl):
    disordered = nacl.copy()
    disordered.replace_species({"Na": {"Na": 0.5, "K": 0.5}})
    assert to_structure(disordered)[1] is None
    assert to_structure(disordered, allow_disordered=False)[1].startswith("disordered")
    assert to_structure(nacl, max_sites=4)[1] == "structure too large (8 sites > 4)"


def test_hash_ignores_site_order_and_wrapping(nacl, srtio3):
    shuffled = Structure.from_sites(list(reversed(nacl.sites)))
    shifted = nacl.copy()
    shifted.translate_sites([0], [1.0, 0, 0], frac_coords=True, to_unit_cell=False)
    assert structure_hash(shuffled) == structure_hash(nacl) == structure_hash(shifted)
    assert structure_hash(srtio3) != structure_hash(nacl)


def test_a_lone_structure_is_one_row(nacl):
    assert parse_structures(nacl).formulas == ["NaCl"]
    assert parse_structures(nacl.to(fmt="cif")).formulas == ["NaCl"]


_FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.lists(st.one_of(st.text(max_size=60), st.none(), st.integers()), max_size=6))
def test_fuzz_random_text_never_raises_and_keeps_rows(items):
    p = parse_structures(items)
    assert len(p) == len(items) == len(p.structures) == len(p.keys)
    for s, key, err in zip(p.structures, p.keys, p.errors, strict=True):
        assert (s is None) == (key is None) == (err is not None)


_CIF = Structure(
    Lattice.cubic(3.905),
    ["Sr", "Ti", "O", "O", "O"],
    [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
).to(fmt="cif")


@_FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.sampled_from(["cif", "auto"]))
def test_fuzz_mutated_cifs_never_raise(seed, n_edits, fmt):
    rng = random.Random(seed)
    text = list(_CIF)
    for _ in range(n_edits):
        i = rng.randrange(len(text))
        op = rng.random()
        if op < 0.4:
            del text[i : i + rng.randint(1, 40)]
        elif op < 0.8:
            text[i] = rng.choice("0123456789.-_ \n'xyzSrO;#")
        else:
            text.insert(i, rng.choice(["data_", "loop_", "1e9", "-0.0", "nan", "\n"]))
    p = parse_structures(["".join(text), _CIF], fmt=fmt)
    assert len(p) == 2 and p.errors[1] is None
    if p.structures[0] is not None:
        assert len(p.structures[0]) > 0 and p.structures[0].volume > 0


def test_paths_can_be_refused(tmp_path, nacl):
    """Text from a web form must not name a server file: with allow_paths=False a string
    that happens to be an existing path is parsed as structure text (and fails), and a
    Path is refused, while the default still reads files."""
    from matfuse.inputs import load_input_table

    path = tmp_path / "nacl.cif"
    path.write_text(nacl.to(fmt="cif"))
    assert list(parse_structures([str(path)]).valid) == [True]
    refused = parse_structures([str(path), path], allow_paths=False)
    assert list(refused.valid) == [False, False]
    assert "unrecognised structure format" in refused.errors[0]
    assert "file paths are not accepted" in refused.errors[1]
    frame = pd.DataFrame({"cif": [str(path), nacl.to(fmt="cif")]})
    table = load_input_table(frame, input_type="structure", allow_paths=False)
    assert list(table.parsed.valid) == [False, True]
