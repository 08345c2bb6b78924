"""PMO tasks and the PMO AUC against values computed by hand."""

from __future__ import annotations

import math

import pytest
from rdkit import Chem
from rdkit.Chem import QED, Crippen, GraphDescriptors, rdMolDescriptors

from matfuse.generate import pmo
from matfuse.generate.guacamol import GUACAMOL_TASKS, count_tanimoto, isomer_score
from matfuse.generate.pmo import PMO_EXCLUDED, PMO_TASKS, pmo_auc

VALSARTAN = "CCCCC(=O)N(Cc1ccc(-c2ccccc2-c2nn[nH]n2)cc1)[C@@H](C(C)C)C(=O)O"


def _gauss(x: float, mu: float, sigma: float) -> float:
    return math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def test_the_twenty_tasks_and_the_shared_guacamol_ones():
    assert len(PMO_TASKS) == 20
    assert not set(PMO_TASKS) & set(PMO_EXCLUDED)
    assert "aripiprazole_similarity" not in PMO_TASKS  # a GuacaMol task, not a PMO one
    # identical definitions are one object, not two copies
    assert PMO_TASKS["celecoxib_rediscovery"] is GUACAMOL_TASKS["celecoxib_rediscovery"]


@pytest.mark.parametrize(
    "task, target",
    [
        ("albuterol_similarity", pmo.ALBUTEROL),
        ("mestranol_similarity", pmo.MESTRANOL),
        ("troglitazone_rediscovery", "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O"),
    ],
)
def test_target_scores_one_on_its_own_similarity_task(task, target):
    randomised = Chem.MolToSmiles(Chem.MolFromSmiles(target), doRandom=True)
    assert PMO_TASKS[task]([target, randomised]).tolist() == pytest.approx([1.0, 1.0])
    assert PMO_TASKS[task](["not a molecule"])[0] == 0.0


def test_similarity_clipping_by_hand():
    # albuterol: FCFP4 similarity through a linear ramp reaching 1 at 0.75
    mol, target = Chem.MolFromSmiles("OCc1ccccc1O"), Chem.MolFromSmiles(pmo.ALBUTEROL)
    sim = count_tanimoto(mol, target, "FCFP4")
    assert 0 < sim < 0.75
    assert PMO_TASKS["albuterol_similarity"](["OCc1ccccc1O"])[0] == pytest.approx(sim / 0.75)


def test_isomers_guacamol_definition():
    guacamol = pmo.pmo_tasks("guacamol")
    for isomer in ("Nc1ccc(N)c(C(=O)O)c1", "Cc1ccc(N)cc1[N+](=O)[O-]"):  # both C7H8N2O2
        assert guacamol["isomers_c7h8n2o2"]([isomer])[0] == pytest.approx(1.0)
    # benzoic acid C7H6O2: H off by 2, N off by 2, total 15 vs 19 (sigma 2); 5 terms
    expected = math.exp((-0.5 * 4 - 0.5 * 4 - 0.5 * 2**2) / 5)
    assert guacamol["isomers_c7h8n2o2"](["OC(=O)c1ccccc1"])[0] == pytest.approx(expected)
    assert guacamol["isomers_c9h10n2o2pf2cl"] is GUACAMOL_TASKS["isomers_c9h10n2o2pf2cl"]


def test_isomers_tdc_definition_reads_the_smiles_string():
    # benzoic acid, canonical O=C(O)c1ccccc1: the regex sees O, C, O (aromatic c is lower
    # case), so the total term is a Gaussian at 19 (sigma 2) of 3: exp(-32); the element
    # terms are GuacaMol's (C 7 of 7, H 6 of 8, N 0 of 2, O 2 of 2)
    expected = math.exp((0 - 2 - 2 - 0 - 32) / 5)
    assert PMO_TASKS["isomers_c7h8n2o2"](["OC(=O)c1ccccc1"])[0] == pytest.approx(expected)
    # a true isomer no longer scores 1: its SMILES reads N, N, C, O, O = 5 atoms
    isomer = PMO_TASKS["isomers_c7h8n2o2"](["Nc1ccc(N)c(C(=O)O)c1"])[0]
    assert isomer == pytest.approx(math.exp(-0.5 * (14 / 2) ** 2 / 5))
    # a ring-closure digit after an atom is read as its count: C1CC2CCC1C2 (norbornane)
    mol = Chem.MolFromSmiles("C1CC2CCC1C2")
    assert Chem.MolToSmiles(mol) == "C1CC2CCC1C2"
    c, h, total = 7, 12, 1 + 1 + 2 + 1 + 1 + 1 + 2  # C1 C C2 C C C1 C2
    by_hand = [_gauss(c, 7, 1), _gauss(h, 8, 1), _gauss(0, 2, 1), _gauss(0, 2, 1)]
    by_hand.append(_gauss(total, 19, 2))
    assert pmo.tdc_isomer_score(mol, "C7H8N2O2") == pytest.approx(math.prod(by_hand) ** 0.2)
    with pytest.raises(ValueError, match="isomers"):
        pmo.pmo_tasks("iupac")


def test_median2_of_tadalafil():
    t, s = Chem.MolFromSmiles(pmo.TADALAFIL), Chem.MolFromSmiles(pmo.SILDENAFIL)
    expected = math.sqrt(count_tanimoto(t, s, "ECFP6"))
    assert PMO_TASKS["median2"]([pmo.TADALAFIL])[0] == pytest.approx(expected)


def test_ring_count_mpos_of_their_targets():
    # amlodipine has 2 rings (Gaussian at 3, sigma 0.5 -> e^-2); perindopril has no aromatic
    # ring (Gaussian at 2, sigma 0.5 -> e^-8); similarity 1; geometric mean of two terms
    assert PMO_TASKS["amlodipine_mpo"]([pmo.AMLODIPINE])[0] == pytest.approx(math.exp(-1))
    assert PMO_TASKS["perindopril_mpo"]([pmo.PERINDOPRIL])[0] == pytest.approx(math.exp(-4))


def test_ranolazine_mpo_of_ranolazine():
    mol = Chem.MolFromSmiles(pmo.RANOLAZINE)
    tpsa, logp = rdMolDescriptors.CalcTPSA(mol), Crippen.MolLogP(mol)
    parts = [
        1.0 if tpsa >= 95 else _gauss(tpsa, 95, 20),
        1.0 if logp >= 7 else _gauss(logp, 7, 1),
        1.0,  # AP similarity 1, clipped at 0.7
        _gauss(0, 1, 1),  # no fluorine, one wanted
    ]
    assert PMO_TASKS["ranolazine_mpo"]([pmo.RANOLAZINE])[0] == pytest.approx(
        math.prod(parts) ** 0.25
    )


def test_zaleplon_and_sitagliptin_mpo_of_their_targets():
    zal = Chem.MolFromSmiles(pmo.ZALEPLON)
    guacamol = pmo.pmo_tasks("guacamol")
    expected = math.sqrt(isomer_score(zal, "C19H17N3O2"))  # zaleplon itself is C17H15N5O
    assert expected < 0.9
    assert guacamol["zaleplon_mpo"]([pmo.ZALEPLON])[0] == pytest.approx(expected)
    tdc = math.sqrt(pmo.tdc_isomer_score(zal, "C19H17N3O2"))
    assert PMO_TASKS["zaleplon_mpo"]([pmo.ZALEPLON])[0] == pytest.approx(tdc)
    # sitagliptin has its own logP, TPSA and formula, but similarity 1 is penalised by a
    # Gaussian at 0 with sigma 0.1: exp(-50), to the power 1/4
    sita = Chem.MolFromSmiles(pmo.SITAGLIPTIN)
    assert guacamol["sitagliptin_mpo"]([pmo.SITAGLIPTIN])[0] == pytest.approx(math.exp(-50 / 4))
    formula = pmo.tdc_isomer_score(sita, "C16H15F6N5O")
    assert 0 < formula < 1  # TDC reads its SMILES string, which misses the aromatic atoms
    assert PMO_TASKS["sitagliptin_mpo"]([pmo.SITAGLIPTIN])[0] == pytest.approx(
        (math.exp(-50) * formula) ** 0.25
    )


def test_valsartan_smarts():
    val, sita = Chem.MolFromSmiles(VALSARTAN), Chem.MolFromSmiles(pmo.SITAGLIPTIN)
    assert val.HasSubstructMatch(Chem.MolFromSmarts(pmo.VALSARTAN_SMARTS))
    parts = [
        1.0,
        _gauss(rdMolDescriptors.CalcTPSA(val), rdMolDescriptors.CalcTPSA(sita), 5),
        _gauss(Crippen.MolLogP(val), Crippen.MolLogP(sita), 0.2),
        _gauss(GraphDescriptors.BertzCT(val), GraphDescriptors.BertzCT(sita), 30),
    ]
    assert PMO_TASKS["valsartan_smarts"]([VALSARTAN])[0] == pytest.approx(math.prod(parts) ** 0.25)
    # without the substructure the geometric mean is 0, whatever the properties
    assert PMO_TASKS["valsartan_smarts"]([pmo.SITAGLIPTIN])[0] == 0.0


def test_hop_tasks_of_the_reference_inhibitor():
    ref = pmo.HOP_PHARMACOPHORE
    # deco hop: pharmacophore 1, both old decorations present (0, 0), scaffold kept (1)
    assert PMO_TASKS["deco_hop"]([ref])[0] == pytest.approx(0.5)
    # scaffold hop: pharmacophore 1, decorations kept (1), old scaffold present (0)
    assert PMO_TASKS["scaffold_hop"]([ref])[0] == pytest.approx(2 / 3)
    # ethanol: no pharmacophore, no decoration, no scaffold -> only the inverse terms score
    assert PMO_TASKS["deco_hop"](["CCO"])[0] == pytest.approx(0.5)
    assert PMO_TASKS["scaffold_hop"](["CCO"])[0] == pytest.approx(1 / 3)


def test_qed_equals_rdkit():
    aspirin = "CC(=O)Oc1ccccc1C(=O)O"
    assert PMO_TASKS["qed"]([aspirin])[0] == pytest.approx(QED.qed(Chem.MolFromSmiles(aspirin)))


# -- the metric ----------------------------------------------------------------------------
def test_pmo_auc_by_hand():
    # 250 calls of a 400-call budget: 100 x 0.1, 100 x 0.3, 50 x 0.6.
    # checkpoints: top-10 0.1 at call 100, 0.3 at 200; final 0.6 at 250; padded to 400.
    # area = 100 (0 + 0.1)/2 + 100 (0.1 + 0.3)/2 + 50 (0.3 + 0.6)/2 + 150 * 0.6 = 137.5
    history = [0.1] * 100 + [0.3] * 100 + [0.6] * 50
    assert pmo_auc(history, budget=400) == pytest.approx(137.5 / 400)


def test_pmo_auc_uses_the_top_ten_and_call_order():
    # fewer than 10 molecules at the first checkpoint: the mean of those there are
    history = [1.0] * 5 + [0.0] * 95 + [0.5] * 100
    # top-10 at 100: five 1.0 and five 0.0 -> 0.5; at 200: five 1.0, five 0.5 -> 0.75
    expected = (100 * (0 + 0.5) / 2 + 100 * (0.5 + 0.75) / 2) / 200
    assert pmo_auc(history, budget=200) == pytest.approx(expected)
    # the same ten good molecules found first or last: 150/200 against 50/200
    assert pmo_auc([1.0] * 10 + [0.0] * 190, budget=200) == pytest.approx(0.75)
    assert pmo_auc([0.0] * 190 + [1.0] * 10, budget=200) == pytest.approx(0.25)
    assert pmo_auc([], budget=100) == 0.0
