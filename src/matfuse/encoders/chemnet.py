"""ChemNet embeddings: the pretrained network shipped inside the ``fcd`` package.

ChemNet (Preuer et al. 2018) was trained to predict ~6,000 bioactivities from SMILES; its
penultimate layer (512 units) is the representation behind the Fréchet ChemNet Distance.
Used here as a frozen, pretrained molecular embedding that needs no download.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import ClassVar

import numpy as np
from rdkit import Chem

from matfuse.encoders.base import MoleculeEncoder

CHEMNET_DIM = 512


@lru_cache(maxsize=1)
def load_chemnet():
    """Load the ChemNet weights that ship with ``fcd`` (cached; about 1 s the first time)."""
    import fcd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fcd.load_ref_model()


class ChemNetEncoder(MoleculeEncoder):
    """Penultimate-layer ChemNet activations of the canonical SMILES (512 floats)."""

    name: ClassVar[str] = "chemnet"
    pretrained: ClassVar[bool] = True
    description: ClassVar[str] = "ChemNet penultimate layer (pretrained, from the fcd package)"
    cache_by_default: ClassVar[bool] = True

    def __init__(self, batch_size: int = 256, device: str = "cpu", cache: bool = True) -> None:
        self.batch_size = batch_size
        self.device = device
        self.cache = cache

    @property
    def dim(self) -> int:
        return CHEMNET_DIM

    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        import fcd

        if not smiles:
            return np.zeros((0, CHEMNET_DIM), dtype=np.float32)
        model = load_chemnet()
        # ChemNet was trained on RDKit canonical SMILES without stereo marks stripped;
        # feeding canonical SMILES keeps train and predict inputs consistent.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fcd.get_predictions(
                model, list(smiles), batch_size=self.batch_size, n_jobs=0, device=self.device
            )
