"""Hashed and keyed RDKit fingerprints: ECFP/FCFP (bits or counts), MACCS, atom pairs, torsions.

All use RDKit's ``rdFingerprintGenerator`` (or the MACCS key table) and write straight into
a preallocated array, which keeps them on par with dedicated fingerprint libraries.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors

from matfuse.encoders.base import MoleculeEncoder


class MorganEncoder(MoleculeEncoder):
    """Extended-connectivity (ECFP) or functional-class (FCFP) Morgan fingerprints.

    Parameters
    ----------
    radius : Morgan radius (2 gives ECFP4).
    n_bits : folded length.
    counts : count vector instead of bits; counts usually help regression of size-
        dependent properties (solubility, energies).
    features : use pharmacophoric atom invariants (FCFP) instead of atom identity (ECFP).
    chirality : include chirality in the atom invariants.
    """

    name: ClassVar[str] = "ecfp"
    description: ClassVar[str] = "Morgan/ECFP fingerprint (RDKit)"

    def __init__(
        self,
        radius: int = 2,
        n_bits: int = 2048,
        counts: bool = False,
        features: bool = False,
        chirality: bool = False,
    ) -> None:
        self.radius = radius
        self.n_bits = n_bits
        self.counts = counts
        self.features = features
        self.chirality = chirality

    @property
    def dim(self) -> int:
        return int(self.n_bits)

    def _generator(self):
        kwargs = {}
        if self.features:
            kwargs["atomInvariantsGenerator"] = rdFingerprintGenerator.GetMorganFeatureAtomInvGen()
        return rdFingerprintGenerator.GetMorganGenerator(
            radius=self.radius, fpSize=self.n_bits, includeChirality=self.chirality, **kwargs
        )

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        return _run_generator(self._generator(), mols, self.n_bits, self.counts)


class _HashedCountEncoder(MoleculeEncoder):
    """Shared shape of the folded atom-pair and torsion fingerprints (counts by default)."""

    def __init__(self, n_bits: int = 2048, counts: bool = True) -> None:
        self.n_bits = n_bits
        self.counts = counts

    @property
    def dim(self) -> int:
        return int(self.n_bits)

    def _generator(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        return _run_generator(self._generator(), mols, self.n_bits, self.counts)


class AtomPairEncoder(_HashedCountEncoder):
    """Atom-pair fingerprint: pairs of atom types with their topological distance."""

    name: ClassVar[str] = "atompair"
    description: ClassVar[str] = "atom-pair fingerprint (RDKit)"

    def _generator(self):
        return rdFingerprintGenerator.GetAtomPairGenerator(fpSize=self.n_bits)


class TorsionEncoder(_HashedCountEncoder):
    """Topological-torsion fingerprint: linear paths of four bonded atoms."""

    name: ClassVar[str] = "torsion"
    description: ClassVar[str] = "topological torsion fingerprint (RDKit)"

    def _generator(self):
        return rdFingerprintGenerator.GetTopologicalTorsionGenerator(fpSize=self.n_bits)


class MACCSEncoder(MoleculeEncoder):
    """The 166 MACCS structural keys (plus RDKit's unused bit 0)."""

    name: ClassVar[str] = "maccs"
    description: ClassVar[str] = "MACCS 166 structural keys (RDKit)"

    @property
    def dim(self) -> int:
        return 167

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        out = np.zeros((len(mols), 167), dtype=np.float32)
        for i, mol in enumerate(mols):
            fp = rdMolDescriptors.GetMACCSKeysFingerprint(mol)
            out[i, list(fp.GetOnBits())] = 1.0
        return out


def _run_generator(gen, mols: list[Chem.Mol], n_bits: int, counts: bool) -> np.ndarray:
    out = np.empty((len(mols), n_bits), dtype=np.float32)
    fn = gen.GetCountFingerprintAsNumPy if counts else gen.GetFingerprintAsNumPy
    for i, mol in enumerate(mols):
        out[i] = fn(mol)
    return out
