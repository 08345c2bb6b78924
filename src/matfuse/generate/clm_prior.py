"""The chemical language model as the prior of the SMC strategy (iQSPR with a learned prior).

Particles are token-id lists of SMILES (no begin/end tokens). A move keeps a random prefix of
the particle and lets the model write the rest (``ChemicalLanguageModel.extend``), the same
"resample a suffix" move the n-gram prior makes, but from a model that has learned the
training distribution, so most proposals are valid, drug-like molecules. All randomness comes
from the strategy's numpy generator, so a seed fixes the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matfuse.foundation.clm import ChemicalLanguageModel

__all__ = ["CLMPrior"]


class CLMPrior:
    """Sample, mutate and decode SMILES token lists with a :class:`ChemicalLanguageModel`."""

    def __init__(
        self,
        model: ChemicalLanguageModel | str,
        rng: np.random.Generator,
        temperature: float = 1.0,
        max_length: int = 128,
    ) -> None:
        from matfuse.foundation.clm import load_clm

        self.model = load_clm(model) if isinstance(model, str) else model
        self.rng = rng
        self.temperature = float(temperature)
        self.max_length = int(max_length)

    def _generator(self) -> Any:
        import torch

        return torch.Generator(self.model.device).manual_seed(int(self.rng.integers(2**62)))

    def _ids(self, smiles: str) -> list[int]:
        ids = self.model.token_ids(smiles)
        return [] if ids is None else ids[1:-1]

    def from_smiles(self, smiles: list[str]) -> list[Any]:
        from matfuse.foundation.tokenizers import canonical_smiles

        particles = [self._ids(canonical_smiles(s) or "") for s in smiles]
        missing = [i for i, p in enumerate(particles) if not p]
        for i, p in zip(missing, self.sample(len(missing)), strict=True):
            particles[i] = p
        return particles

    def sample(self, n: int) -> list[Any]:
        import torch

        if n <= 0:
            return []
        with torch.no_grad():
            smiles, _ = self.model.sample(
                n,
                temperature=self.temperature,
                generator=self._generator(),
                max_length=self.max_length,
            )
        return [self._ids(s) or [] for s in smiles]

    def mutate(self, particles: list[Any]) -> list[Any]:
        """Keep a uniformly drawn prefix (at least one token) and resample the rest."""
        import torch

        out: list[Any] = list(particles)
        rows = [i for i, p in enumerate(particles) if len(p) > 0]
        prefixes = [particles[i][: int(self.rng.integers(1, len(particles[i]) + 1))] for i in rows]
        empty = [i for i, p in enumerate(particles) if len(p) == 0]
        if rows:
            with torch.no_grad():
                texts, _ = self.model.extend(
                    prefixes,
                    temperature=self.temperature,
                    generator=self._generator(),
                    max_length=self.max_length,
                )
            for i, s in zip(rows, texts, strict=True):
                out[i] = self._ids(s)
        for i, p in zip(empty, self.sample(len(empty)), strict=True):
            out[i] = p
        return out

    def to_smiles(self, particles: list[Any]) -> list[str | None]:
        from matfuse.foundation.tokenizers import canonical_smiles

        return [
            canonical_smiles(self.model.tokenizer.decode(p)) if len(p) else None for p in particles
        ]
