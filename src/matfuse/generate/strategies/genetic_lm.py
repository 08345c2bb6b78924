"""``genetic-lm``: a language-model agent and a graph GA that search together, the agent
learning from both (the idea of Genetic GFN, Kim et al. 2024, NeurIPS).

Each step the agent samples ``batch_size`` SMILES, as in :class:`Reinvent`, and the graph GA
breeds ``offspring_size`` children from the replay memory (the best molecules found so far,
parents drawn in proportion to their reward, Jensen's crossover and mutation; see
:func:`~matfuse.generate.strategies.graph_ga.breed`). Both are scored in one oracle call, pass
the same diversity filter, and the agent takes REINVENT's augmented-likelihood update on all
of them plus a replay draw.

Why the children can train the agent: REINVENT's loss is a regression of the agent's
log-likelihood onto ``log p_prior + sigma * score``, not a policy gradient, so a molecule the
agent did not write needs no importance weight; a good child the agent would rarely have
spelled simply becomes likelier, and the agent's later samples explore around it. The GA, for
its part, recombines what the agent has found, which a token-by-token sampler does poorly.

Departures from Genetic GFN, on purpose: REINVENT's loss instead of a GFlowNet's trajectory
balance (one loss for the whole REINVENT family here, and its sigma is tuned by PMO), and one GA
generation per step bred from the memory, instead of several generations per round from a
rank-weighted buffer. With ``offspring_size=0`` this is ``reinvent`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from matfuse.chem.standardize import quiet_rdkit, to_mol
from matfuse.generate.strategies.graph_ga import breed
from matfuse.generate.strategies.reinvent import Reinvent

__all__ = ["GeneticLanguageModel"]


class GeneticLanguageModel(Reinvent):
    """REINVENT whose every batch also holds graph-GA children of its memory."""

    name: ClassVar[str] = "genetic-lm"
    description: ClassVar[str] = (
        "clm agent + graph GA: each batch adds GA children of the best molecules found, "
        "and the agent learns from both (the Genetic GFN idea)"
    )

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
        prior: Any = "clm",
        offspring_size: int = 32,
        mutation_rate: float = 0.067,
        **options: Any,
    ) -> None:
        super().__init__(seed=seed, initial=initial, corpus=corpus, prior=prior, **options)
        if offspring_size < 0:
            raise ValueError(f"offspring_size must be 0 or more, got {offspring_size}")
        self.offspring_size = int(offspring_size)
        self.mutation_rate = float(mutation_rate)

    def _children(self) -> list[str]:
        """GA children of the memory (none until it holds two molecules)."""
        if self.offspring_size == 0 or len(self.memory_) < 2:
            return []
        items = sorted(self.memory_.items())
        with quiet_rdkit():
            parsed = [(to_mol(s), r) for s, r in items]
        mols = [m for m, _ in parsed if m is not None]
        if len(mols) < 2:
            return []
        scores = np.array([r for m, r in parsed if m is not None])
        children = breed(mols, scores, self.offspring_size, self.mutation_rate, self.rng)
        return [c for c in children if c]

    def _sample(self) -> list[str]:
        batch = super()._sample()
        seen = set(batch)
        for child in self._children():
            if child not in seen:
                seen.add(child)
                batch.append(child)
        return batch
