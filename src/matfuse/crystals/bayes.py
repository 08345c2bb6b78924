"""Bayesian-optimisation crystal structure search (CrySPY's ``BO``) as a candidate generator.

Why: a relaxation costs seconds to minutes, a random structure milliseconds. CrySPY's
answer is to draw a large pool of cheap random structures once, describe each by a
fingerprint of its unrelaxed geometry, and let a Gaussian process fitted to the relaxed
energies seen so far pick which pool member to relax next. The budget (relaxations) is then
spent on the members most likely to beat the best energy found.

Here the pool is ``pool_size`` candidates of the ``random`` generator (pyxtal) at the same
seed, so ``bo``'s first ``n_initial`` candidates are exactly ``random``'s first ones and the
two differ only in the choice that follows. The fingerprint is a partial radial
distribution function per pair of elements (:func:`rdf_fingerprint`, CrySPY's RDF
descriptor); the model is scikit-learn's ``GaussianProcessRegressor`` (constant x RBF +
white noise, normalised targets) and the acquisition is expected improvement (``"ei"``) or
Thompson sampling (``"ts"``). Failed relaxations are left out of the fit but never
proposed again. Everything is seeded; a resumed run replays the journal through
:meth:`BayesianGenerator.observe` and proposes the same candidates.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Composition, Structure

from matfuse.crystals.generators import (
    DEFAULT_MAX_ATOMS,
    Candidate,
    CandidateGenerator,
    RandomGenerator,
    register_generator,
)

logger = logging.getLogger(__name__)

__all__ = ["BayesianGenerator", "expected_improvement", "rdf_fingerprint"]


def rdf_fingerprint(
    structure: Structure,
    elements: Sequence[str],
    cutoff: float = 8.0,
    n_bins: int = 40,
    sigma: float = 0.2,
) -> np.ndarray:
    """Gaussian-smeared partial RDFs g_AB(r) for every pair A <= B of ``elements``, stacked.

    Normalised by the pair density (g -> 1 at large r), so cells of the same structure with
    different numbers of formula units have the same fingerprint. ``elements`` fixes the
    block order, so fingerprints of one composition are comparable.
    """
    grid = np.linspace(0.5, cutoff, n_bins)
    symbols = [site.specie.symbol for site in structure]
    count = {e: symbols.count(e) for e in elements}
    volume = structure.volume
    centers, points, _, distances = structure.get_neighbor_list(cutoff + 3 * sigma)
    blocks = []
    shell = 4 * math.pi * grid**2 * sigma * math.sqrt(2 * math.pi)
    for a, b in itertools.combinations_with_replacement(sorted(elements), 2):
        mask = np.array(
            [symbols[i] == a and symbols[j] == b for i, j in zip(centers, points, strict=True)],
            dtype=bool,
        )
        d = distances[mask] if len(distances) else np.zeros(0)
        hist = np.exp(-((grid[:, None] - d[None, :]) ** 2) / (2 * sigma**2)).sum(axis=1)
        density = count[b] / volume
        norm = max(count[a], 1) * max(density, 1e-12) * shell
        blocks.append(hist / norm)
    return np.concatenate(blocks)


def expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0
) -> np.ndarray:
    """EI for minimisation: E[max(best - xi - f, 0)] under f ~ N(mean, std²)."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-12)
    gain = best - xi - mean
    z = gain / std
    return np.asarray(gain * norm.cdf(z) + std * norm.pdf(z))


class BayesianGenerator(CandidateGenerator):
    """A Gaussian process over RDF fingerprints picks the next pool member to relax."""

    name = "bo"
    description = "Bayesian optimisation over a pyxtal pool with RDF fingerprints (CrySPY BO)"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        pool_size: int = 100,
        n_initial: int = 4,
        acquisition: str = "ei",
        xi: float = 0.0,
        cutoff: float = 8.0,
        n_bins: int = 40,
        sigma: float = 0.2,
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        if acquisition not in ("ei", "ts"):
            raise ValueError(f"acquisition {acquisition!r}: choose 'ei' or 'ts'")
        if pool_size < 1 or n_initial < 1:
            raise ValueError("pool_size and n_initial must be at least 1")
        self.pool_size = int(pool_size)
        self.n_initial = int(n_initial)
        self.acquisition = acquisition
        self.xi = float(xi)
        self.cutoff = float(cutoff)
        self.n_bins = int(n_bins)
        self.sigma = float(sigma)
        self._pool: list[Candidate] | None = None
        self._features: np.ndarray | None = None
        self._chosen: list[int] = []  # pool index of each candidate yielded, in order
        self._energies: dict[int, float] = {}  # pool index -> relaxed energy per atom
        self._tried: set[int] = set()

    # ------------------------------------------------------------------ pool
    def _build_pool(self) -> None:
        random = RandomGenerator(self.composition, **self.shared_options())
        pool = list(itertools.islice(random.candidates(), self.pool_size))
        elements = [el.symbol for el in self.composition]
        features = np.array(
            [
                rdf_fingerprint(c.structure, elements, self.cutoff, self.n_bins, self.sigma)
                for c in pool
            ]
        )
        if len(pool):
            # standardised columns: no single pair's RDF dominates the kernel distance
            scale = features.std(axis=0)
            features = (features - features.mean(axis=0)) / np.where(scale > 1e-12, scale, 1.0)
        self._pool, self._features = pool, features
        logger.info("bo: pool of %d random candidates", len(pool))

    # ------------------------------------------------------------------ feedback
    def observe(
        self, index: int, candidate: Candidate, relaxed: Structure | None, energy_per_atom: float
    ) -> None:
        """Record the relaxed energy of the pool member that candidate ``index`` was."""
        if index >= len(self._chosen):
            return
        member = self._chosen[index]
        if relaxed is not None and np.isfinite(energy_per_atom):
            self._energies[member] = float(energy_per_atom)

    # ------------------------------------------------------------------ choice
    def _next(self, count: int) -> tuple[int, str]:
        assert self._pool is not None and self._features is not None
        untried = [i for i in range(len(self._pool)) if i not in self._tried]
        if count < self.n_initial or len(self._energies) < 2:
            return untried[0], "init"
        seen = sorted(self._energies)
        x = self._features[seen]
        y = np.array([self._energies[i] for i in seen])
        model = self._fit(x, y, count)
        xs = self._features[untried]
        if self.acquisition == "ei":
            mean, std = model.predict(xs, return_std=True)
            score = expected_improvement(np.asarray(mean), np.asarray(std), float(y.min()), self.xi)
        else:  # Thompson: one joint posterior draw, lowest value wins
            draw = model.sample_y(xs, n_samples=1, random_state=self.seed + count)
            score = -np.asarray(draw).ravel()
        return untried[int(np.argmax(score))], self.acquisition

    def _fit(self, x: np.ndarray, y: np.ndarray, count: int) -> Any:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(
            length_scale=math.sqrt(x.shape[1]), length_scale_bounds=(1e-2, 1e4)
        ) + WhiteKernel(1e-3, (1e-6, 1.0))
        model = GaussianProcessRegressor(
            kernel=kernel, normalize_y=True, n_restarts_optimizer=2, random_state=self.seed + count
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        return model

    def candidates(self) -> Iterator[Candidate]:
        if self._pool is None:
            self._build_pool()
        assert self._pool is not None
        for count in range(len(self._pool)):
            member, how = self._next(count)
            self._tried.add(member)
            self._chosen.append(member)
            c = self._pool[member]
            yield Candidate(c.structure, f"bo:{how}:{member}:{c.origin}")


register_generator(BayesianGenerator, {"bayesian", "feedback"})
