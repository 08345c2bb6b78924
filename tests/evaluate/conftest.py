"""Small hand-made molecule sets shared by the evaluation tests (built in-process)."""

from __future__ import annotations

import numpy as np
import pytest

from matfuse.evaluate.splitters import Split

#: Four analogue series (10 members each, one varied substituent). Members of a series
#: are Tanimoto-similar to each other and dissimilar to the other series; series A, B and
#: D each share one ring scaffold, series C is acyclic (empty scaffold).
SERIES_CORES = {
    "A": "O=C(c1ccc({R})cc1)N1CCN(C)CC1",
    "B": "c1cc({R})ccc1Nc2ncnc3ccccc23",
    "C": "CC(C)(C)OC(=O)N[C@@H](C{R})C(=O)O",
    "D": "NCCc1c[nH]c2ccc({R})cc12",
}
SUBSTITUENTS = ["F", "Cl", "Br", "C", "OC", "C(F)(F)F", "C#N", "N(C)C", "O", "CC"]

#: Diverse marketed drugs and simple molecules (mostly distinct scaffolds).
DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",  # ibuprofen
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "CN1CCC[C@H]1c1cccnc1",  # nicotine
    "COc1ccc2[nH]cc(CCNC(C)=O)c2c1",  # melatonin
    "CN(C)CCCN1c2ccccc2CCc2ccccc21",  # imipramine
    "Clc1ccc2c(c1)C(c1ccccc1)=NCC(=O)N2",  # nordazepam
    "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O",  # penicillin G
    "OC(=O)c1ccccc1O",  # salicylic acid
    "c1ccc2ccccc2c1",  # naphthalene
    "C1CCC(CC1)N",  # cyclohexylamine
    "O=C1CCCCC1",  # cyclohexanone
    "c1ccc(cc1)-c1ccccn1",  # 2-phenylpyridine
    "CC(C)NCC(O)COc1cccc2ccccc12",  # propranolol
    "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",  # diazepam
    "NC(=O)c1cccnc1",  # nicotinamide
    "O=C(O)c1ccc(N)cc1",  # PABA
    "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",  # salbutamol
    "COc1ccc(CCN)cc1OC",  # DMPEA
    "c1ccc2c(c1)oc1ccccc12",  # dibenzofuran
    "C1CCOC1",  # THF
    "c1ccsc1",  # thiophene
    "O=C1NC(=O)C(N1)(c1ccccc1)c1ccccc1",  # phenytoin
    "CCCCCCCC",  # octane (acyclic)
    "CCO",  # ethanol (acyclic)
    "OCC(O)CO",  # glycerol (acyclic)
    "NCCCC[C@H](N)C(=O)O",  # lysine (acyclic)
]


def series_smiles() -> tuple[list[str], list[str]]:
    """SMILES of the four series and the series letter of each row."""
    smiles, labels = [], []
    for letter, core in SERIES_CORES.items():
        for r in SUBSTITUENTS:
            smiles.append(core.format(R=r))
            labels.append(letter)
    return smiles, labels


@pytest.fixture(scope="session")
def series() -> tuple[list[str], list[str]]:
    return series_smiles()


@pytest.fixture(scope="session")
def mixed_smiles() -> list[str]:
    """Series plus drugs: 68 molecules with groups of very different sizes."""
    return series_smiles()[0] + DRUGS


def check_partition(split: Split, n: int) -> None:
    """Every row 0..n-1 is in exactly one of train/valid/test."""
    allidx = np.concatenate([split.train, split.valid, split.test])
    assert allidx.size == n, split.sizes
    assert np.array_equal(np.sort(allidx), np.arange(n))


@pytest.fixture(scope="session")
def assert_partition():
    return check_partition
