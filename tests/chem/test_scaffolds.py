"""Bemis–Murcko scaffolds: known answers, acyclic/invalid handling, generic frameworks."""

from __future__ import annotations

import pytest
from rdkit import Chem

from matfuse.chem.scaffolds import murcko_scaffold, murcko_scaffolds, to_mol


@pytest.mark.parametrize(
    ("smiles", "expected"),
    [
        ("CC(C)Cc1ccc(C(C)C(=O)O)cc1", "c1ccccc1"),  # ibuprofen
        ("CC(=O)Nc1ccc(O)cc1", "c1ccccc1"),  # paracetamol
        ("CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "O=C1CN=C(c2ccccc2)c2ccccc2N1"),  # diazepam
        ("COc1ccc2[nH]cc(CCNC(C)=O)c2c1", "c1ccc2[nH]ccc2c1"),  # melatonin
        ("CCN(CC)CCOC(=O)c1ccc(N)cc1", "c1ccccc1"),  # procaine
    ],
)
def test_known_scaffolds(smiles, expected):
    assert murcko_scaffold(smiles) == Chem.CanonSmiles(expected)


def test_acyclic_molecules_have_empty_scaffold():
    assert murcko_scaffold("CCCCCC") == ""
    assert murcko_scaffold("NCCCC[C@H](N)C(=O)O") == ""


@pytest.mark.parametrize("bad", [None, "", "   ", "not_a_smiles", "C1CC", float("nan"), 42])
def test_invalid_input_gives_none_without_raising(bad):
    assert murcko_scaffold(bad) is None
    assert murcko_scaffold(bad, generic=True) is None


def test_accepts_molecules_and_drops_stereo():
    r = murcko_scaffold("C[C@H](N)c1ccc2c(c1)C[C@@H](O)C2")
    s = murcko_scaffold(Chem.MolFromSmiles("C[C@@H](N)c1ccc2c(c1)C[C@H](O)C2"))
    assert r == s == Chem.CanonSmiles("c1ccc2c(c1)CCC2")
    assert "@" not in r


def test_generic_framework_merges_heteroatom_variants():
    pyridyl = murcko_scaffold("Cc1ccc(-c2ccccn2)cc1", generic=True)
    phenyl = murcko_scaffold("Cc1ccc(-c2ccccc2)cc1", generic=True)
    assert pyridyl == phenyl == "C1CCC(C2CCCCC2)CC1"
    # exocyclic C=O is part of the Murcko scaffold but not of the generic framework
    assert murcko_scaffold("O=C1CCCCC1") == "O=C1CCCCC1"
    assert murcko_scaffold("O=C1CCCCC1", generic=True) == "C1CCCCC1"


def test_batch_is_row_aligned():
    assert murcko_scaffolds(["c1ccccc1C", None, "CCO"]) == ["c1ccccc1", None, ""]


def test_to_mol_treats_empty_molecules_as_missing():
    assert to_mol("") is None and to_mol(Chem.Mol()) is None
    assert to_mol(" CCO ").GetNumAtoms() == 3
