"""Bayesian molecular design by sequential Monte Carlo (iQSPR-style; Ikebata et al. 2017).

The target distribution is p(S | Y in U) ∝ p(Y in U | S) p(S): a chemical language prior p(S)
reweighted by the objective. A population of particles is (1) weighted by the tempered
likelihood exp(beta_t * score), with beta_t annealed from ``beta_start`` to ``beta_max`` over the
first ``anneal_fraction`` of the budget, (2) resampled (systematic resampling), and (3) moved by
a mutation drawn from the prior, then scored. Three priors:

- ``ngram``: an n-gram model over SELFIES tokens (see :mod:`matfuse.generate.ngram`), fitted on
  the corpus; mutation re-samples a suffix or a segment of the token string. Always valid.
- ``decoder``: our pretrained ``selfies-ted`` decoder; mutation perturbs the particle's latent
  with Gaussian noise (in the prior's whitened coordinates) and decodes greedily.
- ``clm``: our autoregressive chemical language model (``clm`` weights, or the model directory
  ``clm=``); mutation keeps a token prefix and lets the model write the rest (see
  :mod:`matfuse.generate.clm_prior`).

Departure from a textbook SMC, on purpose: the ``elite_fraction`` best molecules found so far
rejoin the population at every step (their scores are cached, so this costs no oracle calls);
without it the particle cloud can drift away from the best molecule it has already paid for.

Convergence (``patience``, 5 by default): the population methods' stop of PMO (see
:class:`Convergence`), but only once annealing is over: while beta is still low the cloud is
meant to wander, and a flat top-100 then is exploration, not convergence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from matfuse.generate.clm_prior import CLMPrior
from matfuse.generate.ngram import SelfiesNGram, selfies_tokens, tokens_to_smiles
from matfuse.generate.strategies.base import BudgetedOracle, Convergence, Strategy, _as_numpy

__all__ = ["SMCStrategy", "SMCDecoderStrategy", "fitted_ngram", "systematic_resample"]

logger = logging.getLogger(__name__)

_NGRAMS: dict[tuple[int, int], SelfiesNGram] = {}


def fitted_ngram(corpus: Sequence[str], order: int = 4) -> SelfiesNGram:
    """An n-gram fitted on ``corpus``, memoised per process (fitting is the slow part)."""
    key = (hash(tuple(corpus)), order)
    if key not in _NGRAMS:
        _NGRAMS[key] = SelfiesNGram(order=order).fit(corpus)
    return _NGRAMS[key]


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn by systematic resampling (lower variance than multinomial)."""
    n = len(weights)
    positions = (rng.random() + np.arange(n)) / n
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.searchsorted(cum, positions)


class _NGramPrior:
    def __init__(self, model: SelfiesNGram, rng: np.random.Generator) -> None:
        self.model, self.rng = model, rng

    def from_smiles(self, smiles: list[str]) -> list[Any]:
        return [selfies_tokens(s) or self.model.sample_tokens(self.rng) for s in smiles]

    def sample(self, n: int) -> list[Any]:
        return self.model.sample(n, self.rng)

    def mutate(self, particles: list[Any]) -> list[Any]:
        return [self.model.mutate(p, self.rng) for p in particles]

    def to_smiles(self, particles: list[Any]) -> list[str | None]:
        return [tokens_to_smiles(p) for p in particles]


class _DecoderPrior:
    """Particles are latents; a move is z + noise * L eps, decoded greedily."""

    def __init__(self, encoder_name: str, noise: float, rng: np.random.Generator) -> None:
        import matfuse

        self.encoder = matfuse.load_encoder(encoder_name)
        lm = self.encoder.loaded()
        self.mean = _as_numpy(lm.latent_mean)
        self.chol = _as_numpy(lm.latent_chol)
        self.noise, self.rng = noise, rng

    def from_smiles(self, smiles: list[str]) -> list[Any]:
        Z = self.encoder.encode(smiles).astype(np.float64)
        bad = np.isnan(Z).any(axis=1)
        if bad.any():
            Z[bad] = self.sample(int(bad.sum()))
        return list(Z)

    def sample(self, n: int) -> list[Any]:
        eps = self.rng.standard_normal((n, len(self.mean)))
        return list(self.mean + eps @ self.chol.T)

    def mutate(self, particles: list[Any]) -> list[Any]:
        Z = np.stack(particles)
        eps = self.rng.standard_normal(Z.shape)
        return list(Z + self.noise * eps @ self.chol.T)

    def to_smiles(self, particles: list[Any]) -> list[str | None]:
        return self.encoder.decode(np.stack(particles).astype(np.float32))


class SMCStrategy(Strategy):
    """Sequential Monte Carlo with an n-gram SELFIES prior (``prior="ngram"``) or our decoder."""

    name: ClassVar[str] = "smc"
    uses_corpus: ClassVar[bool] = True
    default_prior: ClassVar[str] = "ngram"

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
        prior: str | None = None,
        n_particles: int = 100,
        beta_start: float = 1.0,
        beta_max: float = 30.0,
        anneal_fraction: float = 0.5,
        elite_fraction: float = 0.1,
        order: int = 4,
        ngram: SelfiesNGram | str | Path | None = None,
        encoder: str = "selfies-ted",
        latent_noise: float = 0.3,
        clm: Any = "clm",  # a shipped name, a model directory or a ChemicalLanguageModel
        patience: int | None = 5,
    ) -> None:
        super().__init__(seed=seed, initial=initial, corpus=corpus)
        self.prior = prior or self.default_prior
        if self.prior not in ("ngram", "decoder", "clm"):
            raise ValueError(f"prior must be 'ngram', 'decoder' or 'clm', got {self.prior!r}")
        if n_particles < 2:
            raise ValueError("SMC needs at least two particles")
        self.n_particles = int(n_particles)
        self.beta_start, self.beta_max = float(beta_start), float(beta_max)
        self.anneal_fraction = max(float(anneal_fraction), 1e-9)
        self.elite_fraction = float(elite_fraction)
        self.order = int(order)
        self.ngram = ngram
        self.encoder_name = encoder
        self.latent_noise = float(latent_noise)
        self.clm = clm
        self.patience = patience
        Convergence(patience)  # validates patience here rather than mid-run

    def _prior(self) -> _NGramPrior | _DecoderPrior | CLMPrior:
        if self.prior == "clm":
            return CLMPrior(self.clm, self.rng)
        if self.prior == "decoder":
            return _DecoderPrior(self.encoder_name, self.latent_noise, self.rng)
        if isinstance(self.ngram, SelfiesNGram):
            model = self.ngram
        elif self.ngram is not None:
            model = SelfiesNGram.load(self.ngram)
        else:
            from matfuse.generate.corpus import default_corpus

            model = fitted_ngram(
                self.corpus if self.corpus is not None else default_corpus(), self.order
            )
        return _NGramPrior(model, self.rng)

    def beta(self, oracle: BudgetedOracle) -> float:
        progress = min(1.0, oracle.n_calls / (self.anneal_fraction * oracle.budget))
        return self.beta_start + (self.beta_max - self.beta_start) * progress

    def search(self, oracle: BudgetedOracle) -> None:
        prior = self._prior()
        seeds = self.initial[: self.n_particles]
        particles = prior.from_smiles(seeds) if seeds else []
        particles += prior.sample(self.n_particles - len(particles))
        scores = oracle(prior.to_smiles(particles))
        elite: list[tuple[float, Any]] = []
        n_elite = int(round(self.elite_fraction * self.n_particles))
        annealed = int(np.ceil(self.anneal_fraction * oracle.budget))
        converged = Convergence(self.patience, min_calls=max(100, annealed))
        while not oracle.exhausted:
            keep = ~np.isnan(scores)
            pool = [p for p, k in zip(particles, keep, strict=True) if k]
            pool_scores = scores[keep]
            if n_elite:
                elite = sorted(
                    elite + list(zip(pool_scores.tolist(), pool, strict=True)),
                    key=lambda e: -e[0],
                )[: n_elite * 4]
                top = _distinct_top(elite, n_elite)
                pool += [p for _, p in top]
                pool_scores = np.concatenate([pool_scores, [s for s, _ in top]])
            if not pool:
                pool, pool_scores = prior.sample(self.n_particles), np.zeros(self.n_particles)
            logw = self.beta(oracle) * pool_scores
            w = np.exp(logw - logw.max())
            idx = systematic_resample(w / w.sum(), self.rng)
            parents = [pool[i] for i in idx[: self.n_particles]]
            particles = prior.mutate(parents)
            scores = oracle(prior.to_smiles(particles))
            if converged(oracle):
                logger.info("%s: converged at %d calls", self.name, oracle.n_calls)
                break


def _distinct_top(elite: list[tuple[float, Any]], n: int) -> list[tuple[float, Any]]:
    """The n best entries with distinct scores-and-identity (a particle may repeat in elite)."""
    out: list[tuple[float, Any]] = []
    seen: set[int] = set()
    for score, particle in elite:
        key = hash(tuple(particle)) if isinstance(particle, list) else hash(particle.tobytes())
        if key not in seen:
            seen.add(key)
            out.append((score, particle))
        if len(out) == n:
            break
    return out


class SMCDecoderStrategy(SMCStrategy):
    """SMC with our pretrained ``selfies-ted`` decoder as the prior (latent-noise mutations)."""

    name: ClassVar[str] = "smc-decoder"
    uses_corpus: ClassVar[bool] = False
    default_prior: ClassVar[str] = "decoder"
