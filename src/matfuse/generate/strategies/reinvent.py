"""REINVENT-family strategies: reinforcement learning on a chemical language model prior.

``reinvent`` (Olivecrona et al. 2017; Blaschke et al. 2020 for the diversity filter): an agent,
initialised as a copy of the prior, samples a batch of SMILES; each is scored and the agent is
moved towards the *augmented likelihood* ``log p_prior(s) + sigma * score(s)`` by the squared
loss ``(log p_prior(s) + sigma * score(s) - log p_agent(s))^2``. Two additions, as in
REINVENT 2 (PMO's REINVENT, mol_opt ``reinvent/run.py``, has the replay but no diversity
filter; ``bucket_min_score`` above the best possible score switches the filter off):

- a diversity filter: molecules are put into buckets by Murcko scaffold; once a scaffold's
  bucket holds ``bucket_size`` molecules that scored at least ``bucket_min_score``, further
  molecules with that scaffold get reward 0 (the oracle still records their true score, so the
  benchmark metric is untouched; only the learning signal changes);
- experience replay: the best ``memory_size`` molecules found so far; ``replay`` of them,
  drawn with probability proportional to score, join each update.

``augmented-memory`` (Guo & Schwaller 2023, JACS Au 4, 2160): the same loss, but after each
batch update the agent takes ``augmentation_rounds`` further updates on the batch *and the
whole memory*, each time spelled as new randomised SMILES (same molecules, different token
strings, so the agent learns the molecule rather than one spelling); and "selective memory
purge": when the diversity filter closes a scaffold, memory entries with that scaffold leave.

Budget: the :class:`~matfuse.generate.strategies.base.BudgetedOracle` counts distinct valid
molecules, as PMO's oracle does: a molecule sampled again is not re-scored and costs nothing,
an invalid SMILES scores 0 for free. Replays and augmented rounds never call the oracle.
Convergence (``patience``, 5 by default, as PMO's REINVENT): past 1,000 calls, a run whose 100
best scores stay unchanged for ``patience`` batches in a row stops early, and PMO's AUC pads
it with its final top-k up to the budget; ``patience=None`` spends the whole budget. On CPU
this is what keeps a converged isomer run from spending an hour on a trickle of new molecules.
Randomness: sampling uses a ``torch.Generator`` seeded from ``seed``, replay draws and
SMILES randomisation use ``self.rng``; on one thread the same seed gives the same run.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rdkit import Chem

from matfuse.chem.scaffolds import murcko_scaffold
from matfuse.chem.standardize import canonical_smiles, quiet_rdkit, to_mol
from matfuse.generate.strategies.base import BudgetedOracle, Strategy

if TYPE_CHECKING:  # torch is imported when a run starts: the registry must stay light
    import torch

__all__ = [
    "AugmentedMemory",
    "Reinvent",
    "ScaffoldDiversityFilter",
    "load_prior",
    "randomized_smiles",
]

logger = logging.getLogger(__name__)

_PRIORS: dict[str, Any] = {}
#: PMO's convergence stop for its REINVENT (mol_opt ``main/reinvent/run.py``): past 1,000
#: oracle calls, a run whose 100 best scores have not changed for ``patience`` batches ends;
#: its AUC is then padded with the final top-k to the budget (see ``pmo_auc``).
_TOP = 100
_CONVERGENCE_MIN_CALLS = 1000


def load_prior(prior: Any) -> Any:
    """A language model from a name / directory (loaded once per process) or as given."""
    if not isinstance(prior, str):
        return prior
    if prior not in _PRIORS:
        from matfuse.foundation.clm import load_clm  # lazy: torch model code

        _PRIORS[prior] = load_clm(prior)
    return _PRIORS[prior]


def randomized_smiles(smiles: str, rng: np.random.Generator) -> str | None:
    """A random valid spelling of a molecule (atom order shuffled by ``rng``), or None."""
    mol = to_mol(smiles)
    if mol is None:
        return None
    order = [int(i) for i in rng.permutation(mol.GetNumAtoms())]
    shuffled = Chem.RenumberAtoms(mol, order)
    return Chem.MolToSmiles(shuffled, canonical=False)


class ScaffoldDiversityFilter:
    """REINVENT's identical-Murcko-scaffold filter: a full scaffold bucket earns no reward.

    ``__call__(smiles, scores)`` returns the rewards for learning and records every molecule
    scoring at least ``min_score`` in its scaffold's bucket. Acyclic molecules share the empty
    scaffold, as in REINVENT. A molecule already recorded earns nothing when it is sampled
    again (REINVENT's ``_smiles_exists`` check): the agent is paid for *new* good molecules,
    the replay memory keeps the old ones in mind. Without it the policy collapses onto a few
    high scorers it is paid to repeat; repeats cost no oracle budget, so a run spends
    thousands of updates (an hour of CPU on celecoxib_rediscovery) on 2-3 new molecules each.
    """

    def __init__(self, bucket_size: int = 25, min_score: float = 0.4) -> None:
        self.bucket_size = int(bucket_size)
        self.min_score = float(min_score)
        self.buckets: dict[str, set[str]] = {}
        self.recorded: set[str] = set()

    def is_full(self, scaffold: str) -> bool:
        return len(self.buckets.get(scaffold, ())) >= self.bucket_size

    def __call__(self, smiles: Sequence[str], scores: np.ndarray) -> tuple[np.ndarray, set[str]]:
        """Rewards aligned with ``smiles`` and the scaffolds that filled up in this call."""
        rewards = np.asarray(scores, dtype=float).copy()
        closed: set[str] = set()
        for i, (s, score) in enumerate(zip(smiles, rewards, strict=True)):
            if s in self.recorded:
                rewards[i] = 0.0
                continue
            scaffold = murcko_scaffold(s) if score > 0 else None
            if scaffold is None:
                continue
            if self.is_full(scaffold):
                rewards[i] = 0.0
            elif score >= self.min_score:
                self.buckets.setdefault(scaffold, set()).add(s)
                self.recorded.add(s)
                if self.is_full(scaffold):
                    closed.add(scaffold)
        return rewards, closed


class Reinvent(Strategy):
    """Policy gradient on a chemical language model, with diversity filter and replay."""

    name: ClassVar[str] = "reinvent"
    uses_corpus: ClassVar[bool] = False
    description: ClassVar[str] = (
        "REINVENT: RL on the clm prior (augmented likelihood, scaffold diversity filter, replay)"
    )

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
        prior: Any = "clm",
        batch_size: int = 64,
        sigma: float = 500.0,
        learning_rate: float = 5e-4,
        memory_size: int = 100,
        replay: int = 24,
        bucket_size: int = 25,
        bucket_min_score: float = 0.4,
        temperature: float = 1.0,
        max_length: int = 128,
        max_stalled_steps: int = 200,
        patience: int | None = 5,
    ) -> None:
        super().__init__(seed=seed, initial=initial, corpus=corpus)
        self.prior = prior
        self.batch_size = int(batch_size)
        self.sigma = float(sigma)
        self.learning_rate = float(learning_rate)
        self.memory_size = int(memory_size)
        self.replay = int(replay)
        self.bucket_size = int(bucket_size)
        self.bucket_min_score = float(bucket_min_score)
        self.temperature = float(temperature)
        self.max_length = int(max_length)
        self.max_stalled_steps = int(max_stalled_steps)
        self.patience = patience
        self.memory_: dict[str, float] = {}

    # -- memory ------------------------------------------------------------------------
    def _remember(self, smiles: Sequence[str], rewards: np.ndarray) -> None:
        for s, r in zip(smiles, rewards, strict=True):
            if r > 0 and s not in self.memory_:
                self.memory_[s] = float(r)
        if len(self.memory_) > self.memory_size:
            best = sorted(self.memory_.items(), key=lambda kv: (-kv[1], kv[0]))
            self.memory_ = dict(best[: self.memory_size])

    def _replay_batch(self) -> list[tuple[str, float]]:
        """``replay`` memory entries drawn with probability proportional to their reward."""
        items = sorted(self.memory_.items())
        if not items or self.replay <= 0:
            return []
        weights = np.array([r for _, r in items])
        n = min(self.replay, len(items))
        idx = self.rng.choice(len(items), size=n, replace=False, p=weights / weights.sum())
        return [items[int(i)] for i in sorted(idx)]

    # -- learning ----------------------------------------------------------------------
    def _loss(
        self, smiles: Sequence[str], rewards: Sequence[float] | np.ndarray
    ) -> torch.Tensor | None:
        """Mean squared distance of the agent's log-likelihood to the augmented likelihood."""
        import torch

        if not smiles:
            return None
        with torch.no_grad():
            prior_ll = self.prior_.log_likelihood(list(smiles))
        agent_ll = self.agent_.log_likelihood(list(smiles))
        keep = torch.isfinite(prior_ll) & torch.isfinite(agent_ll)  # strings it cannot spell
        if not bool(keep.any()):
            return None
        target = prior_ll + self.sigma * torch.as_tensor(list(rewards), dtype=prior_ll.dtype)
        return ((target - agent_ll)[keep] ** 2).mean()

    def _step(self, losses: Sequence[torch.Tensor | None]) -> None:
        import torch

        terms = [loss for loss in losses if loss is not None]
        if not terms:
            return
        loss = torch.stack(terms).mean()
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_.step()

    def _learn(self, smiles: list[str], rewards: np.ndarray, closed: set[str]) -> None:
        """One REINVENT update: the batch plus a replay draw from memory."""
        replay = self._replay_batch()
        self._step([self._loss(smiles, rewards), self._loss(*_unzip(replay))])
        self._remember(smiles, rewards)

    # -- the loop ----------------------------------------------------------------------
    def _setup(self) -> None:
        import torch

        torch.manual_seed(self.seed)
        self.prior_ = load_prior(self.prior)
        self.prior_.eval()
        self.agent_ = copy.deepcopy(self.prior_)
        self.agent_.train(False)  # no dropout: the policy is the one being scored
        for p in self.prior_.parameters():
            p.requires_grad_(False)
        for p in self.agent_.parameters():
            p.requires_grad_(True)
        self.optimizer_ = torch.optim.Adam(self.agent_.parameters(), lr=self.learning_rate)
        self.generator_ = torch.Generator().manual_seed(self.seed)
        self.filter_ = ScaffoldDiversityFilter(self.bucket_size, self.bucket_min_score)
        self.memory_ = {}
        self.n_steps_ = 0

    def _sample(self) -> list[str]:
        """A batch of distinct strings from the agent, spelled canonically when valid."""
        import torch

        with torch.no_grad():
            raw, _ = self.agent_.sample(
                self.batch_size,
                temperature=self.temperature,
                generator=self.generator_,
                max_length=self.max_length,
            )
        out: list[str] = []
        seen: set[str] = set()
        with quiet_rdkit():
            for s in raw:
                key = canonical_smiles(to_mol(s)) if s else None
                key = key or s  # invalid strings are kept as sampled (reward 0)
                if key and key not in seen:
                    seen.add(key)
                    out.append(key)
        return out

    def search(self, oracle: BudgetedOracle) -> None:
        self._setup()
        if self.initial:  # seeds are scored once and start in memory, to be replayed
            scores = oracle(self.initial)
            rewards, _ = self.filter_(self.initial, np.nan_to_num(scores, nan=0.0))
            self._remember(self.initial, rewards)
        stalled = flat = 0
        while not oracle.exhausted:
            smiles = self._sample()
            if not smiles:
                break
            before = oracle.n_calls
            top_before = oracle.top_scores(_TOP)
            scores = oracle(smiles)
            if np.isnan(scores).any():  # the budget ran out inside this batch
                break
            stalled = stalled + 1 if oracle.n_calls == before else 0
            if stalled >= self.max_stalled_steps:  # the agent only repeats itself
                logger.info("%s: no new molecule in %d batches; stopping", self.name, stalled)
                break
            if self.patience and oracle.n_calls > _CONVERGENCE_MIN_CALLS:
                same = np.array_equal(oracle.top_scores(_TOP), top_before)
                flat = flat + 1 if same else 0
                if flat >= self.patience:
                    logger.info(
                        "%s: top-%d unchanged for %d batches at %d calls; converged",
                        self.name,
                        _TOP,
                        flat,
                        oracle.n_calls,
                    )
                    break
            rewards, closed = self.filter_(smiles, scores)
            self._learn(smiles, rewards, closed)
            self.n_steps_ += 1


class AugmentedMemory(Reinvent):
    """Augmented Memory: REINVENT with replay of randomised-SMILES copies and memory purge."""

    name: ClassVar[str] = "augmented-memory"
    description: ClassVar[str] = (
        "Augmented Memory: REINVENT whose memory is replayed as randomised SMILES, "
        "several updates per batch"
    )

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
        prior: Any = "clm",
        augmentation_rounds: int = 2,
        **options: Any,
    ) -> None:
        super().__init__(seed=seed, initial=initial, corpus=corpus, prior=prior, **options)
        self.augmentation_rounds = int(augmentation_rounds)

    def _purge(self, closed: set[str]) -> None:
        """Selective memory purge: drop memory entries whose scaffold bucket just filled."""
        if closed:
            self.memory_ = {
                s: r for s, r in self.memory_.items() if murcko_scaffold(s) not in closed
            }

    def _augment(self, smiles: Sequence[str]) -> list[str | None]:
        return [randomized_smiles(s, self.rng) for s in smiles]

    def _learn(self, smiles: list[str], rewards: np.ndarray, closed: set[str]) -> None:
        self._purge(closed)
        memory = sorted(self.memory_.items())
        self._step([self._loss(smiles, rewards), self._loss(*_unzip(memory))])
        for _ in range(self.augmentation_rounds):
            batch = [(a, r) for a, r in zip(self._augment(smiles), rewards, strict=True) if a]
            mem_smiles, mem_rewards = _unzip(memory)
            replay = [(a, r) for a, r in zip(self._augment(mem_smiles), mem_rewards, strict=True)]
            replay = [(a, r) for a, r in replay if a]
            self._step([self._loss(*_unzip(batch)), self._loss(*_unzip(replay))])
        self._remember(smiles, rewards)


def _unzip(pairs: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    return [p[0] for p in pairs], [float(p[1]) for p in pairs]
