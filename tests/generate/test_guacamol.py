"""GuacaMol scoring functions against values computed by hand."""

from __future__ import annotations

import math

import pytest
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

from matfuse.generate.guacamol import (
    CAMPHOR,
    CELECOXIB,
    FEXOFENADINE,
    GUACAMOL_TASKS,
    MENTHOL,
    OSIMERTINIB,
    count_fingerprint,
    count_tanimoto,
    isomer_score,
    parse_formula,
)


def test_rediscovery_of_the_target_is_one():
    assert GUACAMOL_TASKS["celecoxib_rediscovery"]([CELECOXIB])[0] == pytest.approx(1.0)
    # a differently written celecoxib is the same molecule
    other = Chem.MolToSmiles(Chem.MolFromSmiles(CELECOXIB), doRandom=True)
    assert GUACAMOL_TASKS["celecoxib_rediscovery"]([other])[0] == pytest.approx(1.0)
    assert GUACAMOL_TASKS["celecoxib_rediscovery"](["CCO", "not smiles"]).tolist()[1] == 0.0


def test_count_tanimoto_by_hand():
    a, b = Chem.MolFromSmiles("CCCC"), Chem.MolFromSmiles("CC")
    fa = count_fingerprint(a).GetNonzeroElements()
    fb = count_fingerprint(b).GetNonzeroElements()
    inter = sum(min(fa[k], fb[k]) for k in fa.keys() & fb.keys())
    expected = inter / (sum(fa.values()) + sum(fb.values()) - inter)
    assert count_tanimoto(a, b) == pytest.approx(expected)
    # counts matter: the bit-vector Tanimoto of the same pair is different
    bits = len(fa.keys() & fb.keys()) / len(fa.keys() | fb.keys())
    assert expected != pytest.approx(bits)


def test_isomer_scores():
    assert parse_formula("C9H10N2O2PF2Cl") == [
        ("C", 9),
        ("H", 10),
        ("N", 2),
        ("O", 2),
        ("P", 1),
        ("F", 2),
        ("Cl", 1),
    ]
    for undecane in ("CCCCCCCCCCC", "CC(C)CCCCCCCC", "CC(C)(C)CCCCCCC"):
        assert GUACAMOL_TASKS["isomers_c11h24"]([undecane])[0] == pytest.approx(1.0)
    # decane C10H22: C off by 1 (sigma 1), H off by 2 (sigma 1), total 32 vs 35 (sigma 2)
    expected = math.exp((-0.5 * 1 - 0.5 * 4 - 0.5 * 1.5**2) / 3)
    assert isomer_score(Chem.MolFromSmiles("CCCCCCCCCC"), "C11H24") == pytest.approx(expected)


def test_median_molecules():
    camphor, menthol = Chem.MolFromSmiles(CAMPHOR), Chem.MolFromSmiles(MENTHOL)
    t = count_tanimoto(camphor, menthol)
    assert GUACAMOL_TASKS["median1"]([CAMPHOR])[0] == pytest.approx(math.sqrt(t))
    assert GUACAMOL_TASKS["median1"]([MENTHOL])[0] == pytest.approx(math.sqrt(t))


def test_osimertinib_mpo_of_osimertinib():
    mol = Chem.MolFromSmiles(OSIMERTINIB)
    tpsa, logp = rdMolDescriptors.CalcTPSA(mol), Crippen.MolLogP(mol)
    parts = [
        1.0,  # FCFP4 similarity 1, clipped at 0.8 -> 1
        math.exp(-0.5 * (0.15 / 0.1) ** 2),  # ECFP6 similarity 1 > 0.85: MinGaussian
        1.0 if tpsa >= 100 else math.exp(-0.5 * ((tpsa - 100) / 10) ** 2),
        1.0 if logp <= 1 else math.exp(-0.5 * (logp - 1) ** 2),
    ]
    expected = math.prod(parts) ** 0.25
    assert GUACAMOL_TASKS["osimertinib_mpo"]([OSIMERTINIB])[0] == pytest.approx(expected)


def test_fexofenadine_mpo_of_fexofenadine():
    mol = Chem.MolFromSmiles(FEXOFENADINE)
    tpsa, logp = rdMolDescriptors.CalcTPSA(mol), Crippen.MolLogP(mol)
    parts = [
        1.0,
        1.0 if tpsa >= 90 else math.exp(-0.5 * ((tpsa - 90) / 10) ** 2),
        1.0 if logp <= 4 else math.exp(-0.5 * (logp - 4) ** 2),
    ]
    expected = math.prod(parts) ** (1 / 3)
    assert GUACAMOL_TASKS["fexofenadine_mpo"]([FEXOFENADINE])[0] == pytest.approx(expected)


def test_similarity_task_is_clipped():
    task = GUACAMOL_TASKS["aripiprazole_similarity"]
    from matfuse.generate.guacamol import ARIPIPRAZOLE

    assert task([ARIPIPRAZOLE])[0] == 1.0
    assert 0.0 <= task(["CCO"])[0] < 0.5
