"""Physico-chemical descriptor encoders: RDKit's 2D descriptor set and Mordred (2D)."""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import ClassVar

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors

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
