"""``lm-ga``: the graph GA with a chemical language model as the filter on its offspring.

Genetic GFN (Kim et al. 2024) and LM-guided evolution pair a GA with a language model so that
the oracle is only asked about children the model finds plausible. This is the simplest form
of that idea: each generation proposes ``proposal_factor`` times as many children as it will
score (the usual crossover + mutation of :class:`GraphGA`), and keeps the ``offspring_size``
with the highest per-token log-likelihood under the prior. Per token, because the total
log-likelihood falls with length and would otherwise select small molecules. Only the kept
children reach the oracle, so the budget is spent as in the plain GA. The model here never
learns; :mod:`~matfuse.generate.strategies.genetic_lm` (``genetic-lm``) is the variant whose
language model is trained on what the GA finds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from rdkit import Chem

from matfuse.generate.strategies.graph_ga import GraphGA
from matfuse.generate.strategies.reinvent import load_prior

__all__ = ["LanguageModelGA"]

logger = logging.getLogger(__name__)


class LanguageModelGA(GraphGA):
    """Graph GA whose offspring are ranked by the clm prior before the oracle sees them."""

    name: ClassVar[str] = "lm-ga"
    description: ClassVar[str] = (
        "Graph GA whose children are filtered by the clm's per-token log-likelihood"
    )

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
        prior: Any = "clm",
        proposal_factor: int = 3,
        population_size: int = 120,
        offspring_size: int = 70,
        mutation_rate: float = 0.067,
        patience: int | None = 5,
    ) -> None:
        super().__init__(
            seed=seed,
            initial=initial,
            corpus=corpus,
            population_size=population_size,
            offspring_size=offspring_size,
            mutation_rate=mutation_rate,
            patience=patience,
        )
        if proposal_factor < 1:
            raise ValueError(f"proposal_factor must be at least 1, got {proposal_factor}")
        self.prior = prior
        self.proposal_factor = int(proposal_factor)

    def token_log_likelihood(self, smiles: list[str]) -> np.ndarray:
        """Per-token log-likelihood of each string under the prior (-inf if it cannot spell it)."""
        import torch

        model = load_prior(self.prior)
        with torch.no_grad():
            total = model.log_likelihood(smiles).detach().cpu().numpy().astype(float)
        lengths = np.array([len(model.token_ids(s) or [0, 0]) - 1 for s in smiles], dtype=float)
        return total / np.maximum(lengths, 1.0)

    def _reproduce(self, mols: list[Chem.Mol], scores: np.ndarray) -> list[str | None]:
        proposals: list[str] = []
        seen: set[str] = set()
        for _ in range(self.proposal_factor):
            for child in super()._reproduce(mols, scores):
                if child and child not in seen:
                    seen.add(child)
                    proposals.append(child)
        if len(proposals) <= self.offspring_size:
            return list(proposals)
        ll = self.token_log_likelihood(proposals)
        # stable order: ties (and -inf) keep proposal order, so a seed reproduces the run
        keep = np.argsort(-ll, kind="stable")[: self.offspring_size]
        return [proposals[int(i)] for i in sorted(keep)]
