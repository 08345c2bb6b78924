"""Physico-chemical descriptor encoders: RDKit's 2D descriptor set (whole or fast) and Mordred."""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import ClassVar

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors
from rdkit.Chem.EState import EState

from matfuse.chem.standardize import quiet_rdkit
from matfuse.encoders.base import MoleculeEncoder

#: Descriptor values are clipped to this magnitude: a few RDKit/Mordred descriptors (Ipc,
#: some information indices) overflow float32 on large molecules, and an inf in one column
#: would poison scaling of the whole block.
CLIP = 1e12


def _clean(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return np.clip(values, -CLIP, CLIP).astype(np.float32)


class RDKitDescriptorsEncoder(MoleculeEncoder):
    """All of RDKit's 2D descriptors (about 217: size, logP, TPSA, counts, VSA bins, ...)."""

    name: ClassVar[str] = "rdkit2d"
    description: ClassVar[str] = "RDKit 2D physico-chemical descriptors"
    cache_by_default: ClassVar[bool] = True

    def __init__(self, cache: bool = True) -> None:
        self.cache = cache

    @staticmethod
    def descriptor_names() -> list[str]:
        return [name for name, _ in Descriptors._descList]

    @property
    def dim(self) -> int:
        return len(Descriptors._descList)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"rdkit2d_{n}" for n in self.descriptor_names()], dtype=object)

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        out = np.empty((len(mols), self.dim), dtype=np.float64)
        with quiet_rdkit(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, mol in enumerate(mols):
                values = Descriptors.CalcMolDescriptors(mol, missingVal=np.nan)
                out[i] = list(values.values())
        return _clean(out)


#: What ``rdkit2d-fast`` leaves out of RDKit's set, chosen by cost per molecule against
#: information (``benchmarks/results/screening_profile.md``): ``qed`` (a fifth of the whole
#: set's time; a desirability made of MW, logP, HBA, HBD, PSA, rotatable bonds and aromatic
#: rings, all columns of their own, plus structural alerts), ``SPS`` (spacial score), the
#: information contents ``Ipc`` (overflows on large molecules, clipped) and ``AvgIpc``, and
#: the eight ``BCUT2D`` Burden eigenvalues (one costly eigen-decomposition).
FAST_DROPPED = frozenset(
    {"qed", "SPS", "Ipc", "AvgIpc"}
    | {f"BCUT2D_{s}" for s in ("MWHI", "MWLOW", "CHGHI", "CHGLO")}
    | {f"BCUT2D_{s}" for s in ("LOGPHI", "LOGPLOW", "MRHI", "MRLOW")}
)
#: The E-state summaries RDKit recomputes from scratch for each of the four (O(atoms^2) in
#: Python); ``rdkit2d-fast`` computes the indices once and takes all four from them.
_ESTATE_SUMMARIES = {
    "MaxEStateIndex": lambda idx: max(idx),
    "MinEStateIndex": lambda idx: min(idx),
    "MaxAbsEStateIndex": lambda idx: max(abs(x) for x in idx),
    "MinAbsEStateIndex": lambda idx: min(abs(x) for x in idx),
}


class FastRDKitDescriptorsEncoder(RDKitDescriptorsEncoder):
    """RDKit's 2D descriptors less the costly, redundant few: about twice as fast.

    Every column it keeps holds exactly what ``rdkit2d`` computes (the same RDKit
    functions, in the same order); it drops :data:`FAST_DROPPED` and computes the E-state
    indices once per molecule instead of once per summary. ``rdkit2d`` itself is left as it
    was, so saved models that name it load and predict as before.
    """

    name: ClassVar[str] = "rdkit2d-fast"
    description: ClassVar[str] = "RDKit 2D descriptors without qed, SPS, Ipc, AvgIpc, BCUT2D"

    @staticmethod
    def descriptor_names() -> list[str]:
        return [name for name, _ in Descriptors._descList if name not in FAST_DROPPED]

    @property
    def dim(self) -> int:
        return len(self.descriptor_names())

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"{self.name}_{n}" for n in self.descriptor_names()], dtype=object)

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        functions = [(n, fn) for n, fn in Descriptors._descList if n not in FAST_DROPPED]
        out = np.full((len(mols), len(functions)), np.nan, dtype=np.float64)
        with quiet_rdkit(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, mol in enumerate(mols):
                try:
                    estate = EState.EStateIndices(mol)
                except Exception:  # noqa: BLE001 - as CalcMolDescriptors: missing values
                    estate = None
                for j, (name, fn) in enumerate(functions):
                    try:
                        if name in _ESTATE_SUMMARIES:
                            if estate is None:
                                continue
                            out[i, j] = _ESTATE_SUMMARIES[name](estate)
                        else:
                            out[i, j] = fn(mol)
                    except Exception:  # noqa: BLE001, S112 - RDKit raises anything on odd input
                        continue
        return _clean(out)


@lru_cache(maxsize=2)
def _mordred_calculator(ignore_3d: bool):
    from mordred import Calculator, descriptors

    return Calculator(descriptors, ignore_3D=ignore_3d)


class MordredEncoder(MoleculeEncoder):
    """Mordred's 2D descriptors (about 1,600).

    Mordred is thorough but slow (roughly 5-20 molecules per second per core on drug-like
    molecules), so results are cached by canonical SMILES and ``n_jobs`` spreads the work
    over processes.
    """

    name: ClassVar[str] = "mordred"
    description: ClassVar[str] = "Mordred 2D descriptors"
    cache_by_default: ClassVar[bool] = True

    def __init__(self, n_jobs: int = 1, cache: bool = True) -> None:
        self.n_jobs = n_jobs
        self.cache = cache

    @property
    def dim(self) -> int:
        return len(_mordred_calculator(True).descriptors)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = [str(d) for d in _mordred_calculator(True).descriptors]
        return np.array([f"mordred_{n}" for n in names], dtype=object)

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        calc = _mordred_calculator(True)
        out = np.empty((len(mols), self.dim), dtype=np.float64)
        with quiet_rdkit(), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            results = calc.map(mols, nproc=max(1, self.n_jobs), quiet=True)
            for i, result in enumerate(results):
                out[i] = [
                    float(v) if isinstance(v, int | float | np.number) else np.nan
                    for v in result.fill_missing(np.nan).values()
                ]
        return _clean(out)
