import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rdkit import Chem

from matfuse.chem import parse_smiles, to_mol
from matfuse.chem.duplicates import find_duplicates, find_leakage

SMILES_ALPHABET = "CNOSPFIBrcnos()[]=#@+-123456789%/\\.H* "


def test_invalid_rows_are_kept_with_reasons():
    inputs = ["CCO", "C1CC", "", None, float("nan"), "C(C)(C)(C)(C)C", 17, "c1ccccc1 x"]
    p = parse_smiles(inputs)
    assert len(p) == len(inputs)
    assert p.canonical[0] == "CCO" and p.errors[0] is None
    assert p.errors[1].startswith("unparsable SMILES")
    assert p.errors[2] == p.errors[3] == p.errors[4] == "empty SMILES"
    assert "valence" in p.errors[5]
    assert p.errors[6].startswith("not a SMILES string")
    assert "whitespace" in p.errors[7]
    assert list(p.valid) == [True] + [False] * 7
    assert p.n_invalid == 7


def test_canonicalisation_merges_drawings_and_strips_padding():
    p = parse_smiles(["OCC", "C(O)C", "  CCO\t", "[O-][N+](=O)c1ccccc1", "O=N(=O)c1ccccc1"])
    assert p.canonical[0] == p.canonical[1] == p.canonical[2] == "CCO"
    # cleanup normalises the pentavalent nitro drawing to the charge-separated form
    assert p.canonical[3] == p.canonical[4]


def test_parent_standardisation_strips_salts():
    p = parse_smiles(["CC(=O)[O-].[Na+]"], standardize="parent")
    assert p.canonical == ["CC(=O)O"]
    assert parse_smiles(["CC(=O)[O-].[Na+]"], standardize="none").canonical[0].count(".") == 1


def test_disallowed_elements_and_size_limits():
    p = parse_smiles(
        ["CCO", "CC[Si](C)C", "C" * 60], allowed_elements={"C", "O"}, max_heavy_atoms=50
    )
    assert p.errors[0] is None
    assert p.errors[1] == "disallowed element(s): Si"
    assert p.errors[2].startswith("molecule too large (60 heavy atoms")


def test_to_mol_and_mol_input():
    assert to_mol("c1ccccc1").GetNumAtoms() == 6
    assert to_mol("c1cccc") is None
    p = parse_smiles([Chem.MolFromSmiles("OCC")])
    assert p.canonical == ["CCO"]


def test_duplicates_and_leakage():
    canon = parse_smiles(["CCO", "OCC", "CCN", None, "c1ccccc1"]).canonical
    assert find_duplicates(canon) == {"CCO": [0, 1]}
    leaks = find_leakage(canon[:3], parse_smiles(["NCC", "CCCl", "C(C)O"]).canonical)
    assert {leak.canonical for leak in leaks} == {"CCN", "CCO"}
    cco = next(leak for leak in leaks if leak.canonical == "CCO")
    assert cco.train_rows == (0, 1) and cco.test_rows == (2,)


def test_subset_keeps_alignment():
    p = parse_smiles(["CCO", "bad(", "CCN"])
    s = p.subset([2, 1])
    assert s.canonical == ["CCN", None] and s.errors[0] is None and s.errors[1] is not None


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_any_text_never_crashes(text):
    p = parse_smiles([text])
    assert len(p) == 1
    assert (p.errors[0] is None) == (p.mols[0] is not None) == (p.canonical[0] is not None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=SMILES_ALPHABET, max_size=30), min_size=1, max_size=30))
def test_fuzz_smiles_like_batches_stay_row_aligned(batch):
    p = parse_smiles(batch)
    assert len(p.inputs) == len(p.mols) == len(p.canonical) == len(p.errors) == len(batch)
    for mol, canon, err in zip(p.mols, p.canonical, p.errors, strict=True):
        assert (err is None) == (mol is not None) == (canon is not None)
        if canon is not None:
            # canonical SMILES round-trip to themselves
            assert Chem.MolToSmiles(Chem.MolFromSmiles(canon)) == canon
    assert p.valid.dtype == np.bool_
