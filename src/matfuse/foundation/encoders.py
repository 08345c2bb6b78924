"""Our pretrained chemical foundation models as encoders (and decoders).

Each shipped model (``smi-ted``, ``selfies-ted``, ``smi-ssed``, ``graph-ged``) lives in
``matfuse/weights/<name>/`` as safetensors + config + vocabulary + model card. As an encoder it
is a scikit-learn transformer like every other; because it was trained as an autoencoder it
also decodes latents back to molecules, which is what generation builds on::

    m = matfuse.load_encoder("selfies-ted")
    Z = m.encode(["CCO", "c1ccccc1O"])       # (2, latent_dim)
    m.decode(Z)                               # ['CCO', 'Oc1ccccc1']
    m.interpolate("CCO", "c1ccccc1O", n=5)    # molecules along the latent path
    m.sample(10, seed=0)                      # draws from the aggregate posterior

``path=`` points an encoder at a model directory you trained yourself with
``matfuse pretrain``.

Importing this module (and registering these encoders) does not import torch: the name,
modality and dimension come from the class and ``config.json``; the network, and torch with
it, is loaded the first time a model encodes, decodes or samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from rdkit import Chem

from matfuse.encoders.base import MoleculeEncoder
from matfuse.foundation.weights import weights_dir

if TYPE_CHECKING:
    from matfuse.foundation.model_dir import LoadedModel

#: Loaded networks by (directory, device), shared by every encoder instance of the process.
_LOADED: dict[tuple[str, str], LoadedModel] = {}


class FoundationEncoder(MoleculeEncoder):
    """Latent vectors from one of our encoder–decoder models; also decodes latents."""

    name: ClassVar[str] = "foundation"
    pretrained: ClassVar[bool] = True
    cache_by_default: ClassVar[bool] = True

    def __init__(
        self,
        path: str | None = None,
        batch_size: int = 256,
        device: str = "cpu",
        cache: bool = True,
    ) -> None:
        self.path = path
        self.batch_size = batch_size
        self.device = device
        self.cache = cache

    # -- the model -----------------------------------------------------------------------
    def _dir(self) -> Path:
        path = Path(self.path) if self.path else weights_dir(self.name)
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"no weights for {self.name!r} at {path}; train them with "
                f"`matfuse pretrain {self.name} --corpus SMILES_FILE --out DIR` and pass "
                f"path=DIR/model"
            )
        return path

    @property
    def dim(self) -> int:
        config = json.loads((self._dir() / "config.json").read_text())
        return int(config["architecture"]["latent_dim"])

    def loaded(self) -> LoadedModel:
        """The network, tokeniser and latent statistics (loaded once per process)."""
        from matfuse.foundation.model_dir import load_model_dir

        key = (str(self._dir()), self.device)
        if key not in _LOADED:
            _LOADED[key] = load_model_dir(self._dir(), device=self.device)
        return _LOADED[key]

    @property
    def card(self) -> str:
        """The model card (corpus, steps, metrics, command to reproduce)."""
        card = self._dir() / "MODEL_CARD.md"
        return card.read_text() if card.exists() else ""

    # -- encoding ------------------------------------------------------------------------
    def _compute(self, mols: list[Chem.Mol], smiles: list[str]) -> np.ndarray:
        import torch

        from matfuse.foundation.inference import encode_examples, examples_for

        lm = self.loaded()
        examples = examples_for(smiles, lm.tokenizer, lm.model)
        out = np.full((len(smiles), self.dim), np.nan, dtype=np.float32)
        ok = [i for i, e in enumerate(examples) if e is not None]
        if ok:
            with torch.inference_mode():
                out[ok] = encode_examples(
                    lm.model, [e for e in examples if e is not None], self.batch_size
                )
        return out

    # -- decoding ------------------------------------------------------------------------
    def decode(
        self, Z: np.ndarray, temperature: float = 0.0, seed: int | None = None
    ) -> list[str | None]:
        """Canonical SMILES from latents: greedy (temperature 0) or sampled; None if invalid."""
        from matfuse.foundation.inference import decode_latents

        lm = self.loaded()
        Z = np.atleast_2d(np.asarray(Z, dtype=np.float32))
        return decode_latents(lm.model, lm.tokenizer, Z, temperature=temperature, seed=seed)

    def reconstruct(self, smiles: Sequence[str]) -> list[str | None]:
        """decode(encode(x)); rows that cannot be encoded give None."""
        Z = self.encode(list(smiles))
        ok = ~np.isnan(Z).any(axis=1)
        out: list[str | None] = [None] * len(Z)
        for i, smi in zip(np.flatnonzero(ok), self.decode(Z[ok]), strict=True):
            out[i] = smi
        return out

    def interpolate(self, start: str, end: str, n: int = 8) -> list[str | None]:
        """Molecules decoded at ``n`` evenly spaced points of the slerp between two latents."""
        from matfuse.foundation.inference import slerp

        Z = self.encode([start, end])
        if np.isnan(Z).any():
            raise ValueError("both end points must be valid molecules")
        path = np.stack([slerp(Z[0], Z[1], t) for t in np.linspace(0.0, 1.0, n)])
        return self.decode(path)

    def sample(
        self, n: int, seed: int = 0, temperature: float = 0.0, scale: float = 1.0
    ) -> list[str | None]:
        """Molecules decoded from latents drawn from the aggregate posterior."""
        from matfuse.foundation.inference import sample_prior

        lm = self.loaded()
        Z = sample_prior(lm.latent_mean, lm.latent_chol, n, seed=seed, scale=scale)
        return self.decode(Z, temperature=temperature, seed=seed)


class SmiTED(FoundationEncoder):
    name: ClassVar[str] = "smi-ted"
    description: ClassVar[str] = "transformer encoder-decoder on SMILES (ours, MOSES)"


class SelfiesTED(FoundationEncoder):
    name: ClassVar[str] = "selfies-ted"
    modality: ClassVar[str] = "selfies"
    description: ClassVar[str] = "transformer encoder-decoder on SELFIES (ours, MOSES)"


class SmiSSED(FoundationEncoder):
    name: ClassVar[str] = "smi-ssed"
    description: ClassVar[str] = "state-space (Mamba-2) encoder, SMILES decoder (ours, MOSES)"


class GraphGED(FoundationEncoder):
    name: ClassVar[str] = "graph-ged"
    modality: ClassVar[str] = "graph"
    description: ClassVar[str] = "GIN graph encoder, SELFIES decoder (ours, MOSES)"


FOUNDATION_ENCODERS: list[type[FoundationEncoder]] = [SmiTED, SelfiesTED, SmiSSED, GraphGED]
