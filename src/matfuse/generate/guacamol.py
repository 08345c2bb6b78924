"""GuacaMol goal-directed scoring functions, written from their published definitions.

The ``guacamol`` package pins an old ``rdkit-pypi`` and fails to import with current SciPy, so
the tasks are re-implemented here from Brown et al. 2019 (J. Chem. Inf. Model. 59, 1096) and
the definitions in ``guacamol/standard_benchmarks.py``:

- fingerprints are RDKit *count* fingerprints compared with count Tanimoto
  (sum of min / (sum a + sum b - sum of min)): ECFP4 = Morgan radius 2, ECFP6 = radius 3,
  FCFP4 = Morgan radius 2 with feature invariants, AP = atom pairs up to distance 10;
- rediscovery: ECFP4 similarity to the target, clipped at 1.0 (so the score is the similarity);
- similarity: similarity (FCFP4 for aripiprazole) through ClippedScoreModifier(upper_x=0.75);
- isomers: geometric mean of GaussianModifier(mu=n_element, sigma=1) on each element count
  (hydrogens included) and GaussianModifier(mu=n_atoms, sigma=2) on the total atom count;
- median molecules 1: geometric mean of the ECFP4 similarities to camphor and menthol;
- osimertinib MPO: geometric mean of FCFP4 similarity (clipped at 0.8), ECFP6 similarity under
  MinGaussian(0.85, 0.1) ("similar but not too similar"), TPSA MaxGaussian(100, 10) and logP
  MinGaussian(1, 1);
- fexofenadine MPO: geometric mean of AP similarity (clipped at 0.8), TPSA MaxGaussian(90, 10)
  and logP MinGaussian(4, 1).

Invalid molecules score 0 here (GuacaMol uses -1; 0 is the PMO convention, which our
goal-directed metrics follow). Fingerprints use RDKit's generators, whose count fingerprints
are the same features as the legacy ``GetMorganFingerprint`` calls GuacaMol made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import Crippen, rdFingerprintGenerator, rdMolDescriptors

from matfuse.chem.standardize import to_mol
from matfuse.generate.modifiers import (
    ClippedScoreModifier,
    GaussianModifier,
    MaxGaussianModifier,
    MinGaussianModifier,
    Modifier,
)

__all__ = [
    "GUACAMOL_TASKS",
    "GuacaMolTask",
    "MolScore",
    "count_fingerprint",
    "count_tanimoto",
    "descriptor_score",
    "geometric_mean_score",
    "isomer_score",
    "logp",
    "parse_formula",
    "similarity_score",
    "tpsa",
]

FP_TYPES = ("ECFP4", "ECFP6", "FCFP4", "AP")


@cache
def _generator(fp_type: str) -> Any:
    if fp_type == "ECFP4":
        return rdFingerprintGenerator.GetMorganGenerator(radius=2)
    if fp_type == "ECFP6":
        return rdFingerprintGenerator.GetMorganGenerator(radius=3)
    if fp_type == "FCFP4":
        return rdFingerprintGenerator.GetMorganGenerator(
            radius=2, atomInvariantsGenerator=rdFingerprintGenerator.GetMorganFeatureAtomInvGen()
        )
    if fp_type == "AP":
        return rdFingerprintGenerator.GetAtomPairGenerator(minDistance=1, maxDistance=10)
    raise ValueError(f"fingerprint type must be one of {FP_TYPES}, got {fp_type!r}")


def count_fingerprint(mol: Chem.Mol, fp_type: str = "ECFP4") -> Any:
    """Sparse count fingerprint of a molecule, as GuacaMol uses them."""
    return _generator(fp_type).GetSparseCountFingerprint(mol)


def count_tanimoto(a: Chem.Mol, b: Chem.Mol, fp_type: str = "ECFP4") -> float:
    """Count Tanimoto between two molecules."""
    return float(
        DataStructs.TanimotoSimilarity(count_fingerprint(a, fp_type), count_fingerprint(b, fp_type))
    )


# -- building blocks (shared with the PMO tasks in :mod:`matfuse.generate.pmo`) -------------
MolScore = Callable[[Chem.Mol], float]


def similarity_score(target: str, fp_type: str, modifier: Modifier | None = None) -> MolScore:
    """Count Tanimoto to ``target`` (fingerprint computed once), then ``modifier``."""
    target_fp = count_fingerprint(Chem.MolFromSmiles(target), fp_type)

    def score(mol: Chem.Mol) -> float:
        sim = DataStructs.TanimotoSimilarity(target_fp, count_fingerprint(mol, fp_type))
        return float(modifier(sim)) if modifier is not None else float(sim)

    return score


def descriptor_score(fn: Callable[[Chem.Mol], float], modifier: Modifier) -> MolScore:
    """A descriptor mapped to a desirability by ``modifier``."""
    return lambda mol: float(modifier(fn(mol)))


def geometric_mean_score(parts: Sequence[MolScore]) -> MolScore:
    """Geometric mean of the parts: any part at 0 sinks the whole score, as in GuacaMol's MPOs."""

    def score(mol: Chem.Mol) -> float:
        values = np.array([p(mol) for p in parts], dtype=float)
        if (values <= 0).any():
            return 0.0
        return float(np.exp(np.log(values).mean()))

    return score


def parse_formula(formula: str) -> list[tuple[str, int]]:
    """Element counts of a formula: 'C9H10N2O2PF2Cl' -> [('C', 9), ('H', 10), ..., ('Cl', 1)]."""
    parts = re.findall(r"([A-Z][a-z]?)(\d*)", formula)
    if not parts or "".join(e + n for e, n in parts) != formula:
        raise ValueError(f"cannot parse molecular formula {formula!r}")
    return [(element, int(n) if n else 1) for element, n in parts]


def isomer_score(mol: Chem.Mol, formula: str) -> float:
    """GuacaMol's isomer score: 1.0 exactly for an isomer of ``formula``."""
    counts = parse_formula(formula)
    with_h = Chem.AddHs(mol)
    present: dict[str, int] = {}
    for atom in with_h.GetAtoms():
        present[atom.GetSymbol()] = present.get(atom.GetSymbol(), 0) + 1
    scores = [float(GaussianModifier(n, 1.0)(present.get(el, 0))) for el, n in counts]
    total = sum(n for _, n in counts)
    scores.append(float(GaussianModifier(total, 2.0)(with_h.GetNumAtoms())))
    return float(np.exp(np.mean(np.log(np.maximum(scores, 1e-300)))))


def tpsa(mol: Chem.Mol) -> float:
    """Topological polar surface area (N and O only, as GuacaMol and TDC compute it)."""
    return float(rdMolDescriptors.CalcTPSA(mol))


def logp(mol: Chem.Mol) -> float:
    """Crippen logP."""
    # rdkit-stubs omit Crippen.MolLogP (RDKit defines it as a module-level lambda)
    return float(Crippen.MolLogP(mol))  # type: ignore[attr-defined]


# -- the tasks ---------------------------------------------------------------------------
CELECOXIB = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"
TROGLITAZONE = "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O"
THIOTHIXENE = "CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN4CCN(C)CC4)c2c1"
ARIPIPRAZOLE = "Clc4cccc(N3CCN(CCCCOc2ccc1c(NC(=O)CC1)c2)CC3)c4Cl"
CAMPHOR = "CC1(C)C2CCC1(C)C(=O)C2"
MENTHOL = "CC(C)C1CCC(C)CC1O"
OSIMERTINIB = "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34"
FEXOFENADINE = "CC(C)(C(=O)O)c1ccc(cc1)C(O)CCCN2CCC(CC2)C(O)(c3ccccc3)c4ccccc4"


@dataclass(frozen=True)
class GuacaMolTask:
    """A named goal-directed task: ``task(smiles_list) -> scores`` (0 for invalid SMILES)."""

    name: str
    score_mol: MolScore
    description: str

    def score_one(self, smiles_or_mol: Any) -> float:
        mol = to_mol(smiles_or_mol)
        if mol is None:
            return 0.0
        try:
            return float(self.score_mol(mol))
        except Exception:  # RDKit failures on exotic molecules must not abort a batch
            return 0.0

    def __call__(self, smiles: Sequence[Any]) -> np.ndarray:
        return np.array([self.score_one(s) for s in smiles], dtype=float)


def _tasks() -> dict[str, GuacaMolTask]:
    tasks = [
        GuacaMolTask(
            "celecoxib_rediscovery",
            similarity_score(CELECOXIB, "ECFP4"),
            "ECFP4 Tanimoto to celecoxib",
        ),
        GuacaMolTask(
            "troglitazone_rediscovery",
            similarity_score(TROGLITAZONE, "ECFP4"),
            "ECFP4 Tanimoto to troglitazone",
        ),
        GuacaMolTask(
            "thiothixene_rediscovery",
            similarity_score(THIOTHIXENE, "ECFP4"),
            "ECFP4 Tanimoto to thiothixene",
        ),
        GuacaMolTask(
            "aripiprazole_similarity",
            similarity_score(ARIPIPRAZOLE, "FCFP4", ClippedScoreModifier(upper_x=0.75)),
            "FCFP4 Tanimoto to aripiprazole, clipped at 0.75",
        ),
        GuacaMolTask("isomers_c11h24", lambda m: isomer_score(m, "C11H24"), "isomers of C11H24"),
        GuacaMolTask(
            "isomers_c9h10n2o2pf2cl",
            lambda m: isomer_score(m, "C9H10N2O2PF2Cl"),
            "isomers of C9H10N2O2PF2Cl",
        ),
        GuacaMolTask(
            "median1",
            geometric_mean_score(
                [similarity_score(CAMPHOR, "ECFP4"), similarity_score(MENTHOL, "ECFP4")]
            ),
            "geometric mean of ECFP4 similarity to camphor and menthol",
        ),
        GuacaMolTask(
            "osimertinib_mpo",
            geometric_mean_score(
                [
                    similarity_score(OSIMERTINIB, "FCFP4", ClippedScoreModifier(upper_x=0.8)),
                    similarity_score(OSIMERTINIB, "ECFP6", MinGaussianModifier(mu=0.85, sigma=0.1)),
                    descriptor_score(tpsa, MaxGaussianModifier(mu=100, sigma=10)),
                    descriptor_score(logp, MinGaussianModifier(mu=1, sigma=1)),
                ]
            ),
            "osimertinib MPO (similar but not identical, TPSA > 100, logP < 1)",
        ),
        GuacaMolTask(
            "fexofenadine_mpo",
            geometric_mean_score(
                [
                    similarity_score(FEXOFENADINE, "AP", ClippedScoreModifier(upper_x=0.8)),
                    descriptor_score(tpsa, MaxGaussianModifier(mu=90, sigma=10)),
                    descriptor_score(logp, MinGaussianModifier(mu=4, sigma=1)),
                ]
            ),
            "fexofenadine MPO (AP similarity, TPSA > 90, logP < 4)",
        ),
    ]
    return {t.name: t for t in tasks}


#: name -> task, in the order the benchmark reports them
GUACAMOL_TASKS: dict[str, GuacaMolTask] = _tasks()
