"""Latent-space search with our pretrained encoder–decoders (``selfies-ted`` by default).

Three strategies share one idea: search a continuous latent space, decode, score the molecule.

- ``latent-sample``: draw latents from the aggregate-posterior prior and decode (a baseline:
  what does the model propose when it is not steered?).
- ``latent-interpolate``: keep the best molecules found so far and decode points on the slerp
  between random pairs of them (plus a little noise): a crossover in latent space.
- ``latent-cmaes``: CMA-ES (Hansen 2016, "The CMA Evolution Strategy: A Tutorial"), a compact
  numpy implementation, over whitened latents u (z = mean + L u, L the prior's Cholesky factor),
  started at the best of an initial batch, restarted around another good molecule when the
  step size collapses or the search stalls.

Decoding is greedy, so it is deterministic; many nearby latents decode to the same molecule,
which the oracle's cache scores for free (the PMO budget counts distinct molecules only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from matfuse.generate.strategies.base import BudgetedOracle, Strategy, _as_numpy

__all__ = ["CMAES", "LatentCMAES", "LatentInterpolate", "LatentSample", "LatentSearch"]


class LatentSearch(Strategy):
    """Shared plumbing: the decoder, its prior statistics, whitening and decode-and-score."""

    name: ClassVar[str] = "latent"

    def __init__(
        self,
        seed: int = 0,
        initial: Sequence[str] | None = None,
        corpus: Sequence[str] | None = None,
        encoder: str = "selfies-ted",
        batch_size: int = 64,
    ) -> None:
        super().__init__(seed=seed, initial=initial, corpus=corpus)
        self.encoder_name = encoder
        self.batch_size = int(batch_size)

    def _setup(self) -> None:
        import matfuse

        self.encoder = matfuse.load_encoder(self.encoder_name)
        lm = self.encoder.loaded()
        self.mean = _as_numpy(lm.latent_mean)
        self.chol = _as_numpy(lm.latent_chol)
        self.dim = len(self.mean)

    def to_latent(self, u: np.ndarray) -> np.ndarray:
        return self.mean + np.atleast_2d(u) @ self.chol.T

    def to_whitened(self, z: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self.chol, (np.atleast_2d(z) - self.mean).T).T

    def score_whitened(self, oracle: BudgetedOracle, U: np.ndarray) -> tuple[list, np.ndarray]:
        smiles = self.encoder.decode(self.to_latent(U).astype(np.float32))
        return smiles, oracle(smiles)

    def seed_points(self, oracle: BudgetedOracle, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Whitened latents of the seeds (if any) plus prior draws, and their scores."""
        parts = []
        if self.initial:
            Z = self.encoder.encode(self.initial).astype(np.float64)
            Z = Z[~np.isnan(Z).any(axis=1)]
            if len(Z):
                parts.append(self.to_whitened(Z))
        n_prior = max(n - sum(len(p) for p in parts), 0)
        parts.append(self.rng.standard_normal((n_prior, self.dim)))
        U = np.concatenate(parts)
        _, scores = self.score_whitened(oracle, U)
        return U, scores


class LatentSample(LatentSearch):
    """Decode prior draws until the budget is spent (the unsteered baseline)."""

    name: ClassVar[str] = "latent-sample"

    def search(self, oracle: BudgetedOracle) -> None:
        self._setup()
        if self.initial:
            self.seed_points(oracle, 0)
        while not oracle.exhausted:
            self.score_whitened(oracle, self.rng.standard_normal((self.batch_size, self.dim)))


class LatentInterpolate(LatentSearch):
    """Slerp between pairs of the current best molecules' latents, plus small noise."""

    name: ClassVar[str] = "latent-interpolate"

    def __init__(self, *args, n_keep: int = 50, noise: float = 0.2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.n_keep = int(n_keep)
        self.noise = float(noise)

    def search(self, oracle: BudgetedOracle) -> None:
        from matfuse.foundation.inference import slerp

        self._setup()
        U, scores = self.seed_points(oracle, max(self.n_keep, self.batch_size))
        smiles = self.encoder.decode(self.to_latent(U).astype(np.float32))
        noise = self.noise
        while not oracle.exhausted:
            # parents: the best latent of each of the n_keep best *distinct* molecules, so the
            # pool cannot collapse onto copies of one molecule (which would only re-decode it)
            order = np.argsort(-np.nan_to_num(scores, nan=-1.0), kind="stable")
            keep, seen = [], set()
            for i in order:
                if smiles[i] not in seen:
                    seen.add(smiles[i])
                    keep.append(i)
                if len(keep) == self.n_keep:
                    break
            U, scores = U[keep], scores[keep]
            smiles = [smiles[i] for i in keep]
            pairs = self.rng.integers(0, len(U), size=(self.batch_size, 2))
            ts = self.rng.uniform(0.2, 0.8, size=self.batch_size)
            new = np.stack([slerp(U[a], U[b], t) for (a, b), t in zip(pairs, ts, strict=True)])
            new = new + noise * self.rng.standard_normal(new.shape)
            before = oracle.n_calls
            new_smiles, new_scores = self.score_whitened(oracle, new)
            # when the parents converge, midpoints decode to molecules already scored; widen
            # the noise until at least a fifth of each batch is new (and narrow it again after)
            fresh = (oracle.n_calls - before) / len(new)
            if fresh < 0.2:
                noise = min(noise * 1.5, 2.0)
            elif fresh > 0.6:
                noise = max(noise / 1.2, self.noise)
            U = np.concatenate([U, new])
            scores = np.concatenate([scores, new_scores])
            smiles = smiles + list(new_smiles)


class CMAES:
    """(mu/mu_w, lambda)-CMA-ES, minimising; follows Hansen's tutorial (purecma) closely."""

    def __init__(self, x0: np.ndarray, sigma0: float, popsize: int, rng: np.random.Generator):
        n = len(x0)
        self.n, self.rng = n, rng
        self.mean = np.asarray(x0, dtype=float).copy()
        self.sigma = float(sigma0)
        self.lam = int(popsize)
        self.mu = self.lam // 2
        w = np.log(self.mu + 0.5) - np.log(np.arange(1, self.mu + 1))
        self.weights = w / w.sum()
        self.mueff = 1.0 / (self.weights**2).sum()
        self.cc = (4 + self.mueff / n) / (n + 4 + 2 * self.mueff / n)
        self.cs = (self.mueff + 2) / (n + self.mueff + 5)
        self.c1 = 2 / ((n + 1.3) ** 2 + self.mueff)
        self.cmu = min(
            1 - self.c1, 2 * (self.mueff - 2 + 1 / self.mueff) / ((n + 2) ** 2 + self.mueff)
        )
        self.damps = 1 + 2 * max(0.0, np.sqrt((self.mueff - 1) / (n + 1)) - 1) + self.cs
        self.chi_n = np.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))
        self.pc = np.zeros(n)
        self.ps = np.zeros(n)
        self.B = np.eye(n)
        self.D = np.ones(n)
        self.C = np.eye(n)
        self.inv_sqrt_c = np.eye(n)
        self.generation = 0

    def ask(self) -> np.ndarray:
        z = self.rng.standard_normal((self.lam, self.n))
        return self.mean + self.sigma * (z * self.D) @ self.B.T

    def tell(self, X: np.ndarray, f: np.ndarray) -> None:
        self.generation += 1
        order = np.argsort(f, kind="stable")[: self.mu]
        old = self.mean
        self.mean = self.weights @ X[order]
        y = (self.mean - old) / self.sigma
        self.ps = (1 - self.cs) * self.ps + np.sqrt(
            self.cs * (2 - self.cs) * self.mueff
        ) * self.inv_sqrt_c @ y
        ps_norm = np.linalg.norm(self.ps)
        hsig = ps_norm / np.sqrt(1 - (1 - self.cs) ** (2 * self.generation)) / self.chi_n < (
            1.4 + 2 / (self.n + 1)
        )
        self.pc = (1 - self.cc) * self.pc + hsig * np.sqrt(self.cc * (2 - self.cc) * self.mueff) * y
        art = (X[order] - old) / self.sigma
        self.C = (
            (1 - self.c1 - self.cmu) * self.C
            + self.c1 * (np.outer(self.pc, self.pc) + (1 - hsig) * self.cc * (2 - self.cc) * self.C)
            + self.cmu * (art.T * self.weights) @ art
        )
        self.sigma *= np.exp((self.cs / self.damps) * (ps_norm / self.chi_n - 1))
        if self.generation % max(1, int(1 / (10 * self.n * (self.c1 + self.cmu)))) == 0:
            self.C = np.triu(self.C) + np.triu(self.C, 1).T
            d2, self.B = np.linalg.eigh(self.C)
            self.D = np.sqrt(np.maximum(d2, 1e-20))
            self.inv_sqrt_c = (self.B / self.D) @ self.B.T


class LatentCMAES(LatentSearch):
    """CMA-ES over whitened latents, with restarts from other good molecules."""

    name: ClassVar[str] = "latent-cmaes"

    def __init__(
        self,
        *args,
        popsize: int = 32,
        sigma0: float = 0.5,
        n_init: int = 64,
        patience: int = 15,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.popsize = int(popsize)
        self.sigma0 = float(sigma0)
        self.n_init = int(n_init)
        self.patience = int(patience)

    def search(self, oracle: BudgetedOracle) -> None:
        self._setup()
        U, scores = self.seed_points(oracle, self.n_init)
        ranked = list(np.argsort(-np.nan_to_num(scores, nan=-1.0), kind="stable"))
        starts = [U[i] for i in ranked]
        restart = 0
        while not oracle.exhausted:
            x0 = starts[restart % len(starts)] if starts else np.zeros(self.dim)
            es = CMAES(x0, self.sigma0, self.popsize, self.rng)
            best, stale = -np.inf, 0
            while not oracle.exhausted and stale < self.patience and es.sigma > 1e-3:
                X = es.ask()
                _, f = self.score_whitened(oracle, X)
                f = np.nan_to_num(f, nan=-1.0)
                es.tell(X, -f)
                if f.max() > best + 1e-9:
                    best, stale = float(f.max()), 0
                    starts.append(X[int(np.argmax(f))])
                else:
                    stale += 1
            restart += 1
