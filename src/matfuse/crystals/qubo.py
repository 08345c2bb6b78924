"""Site-occupancy annealing: the lowest-energy ordering of a binary alloy on a fixed lattice.

Why a QUBO: once the lattice is fixed, crystal structure prediction of a substitutional
alloy (A/B, or A/vacancy) is a choice of which sites hold B. With point and pair
interactions only, the energy of an occupancy ``x`` (``x_i = 1`` for B) is quadratic in
binary variables, so the search is a quadratic unconstrained binary optimisation that
simulated (or quantum) annealing solves without ever calling the potential. The route:

1. :func:`pair_shells`: neighbour shells of the decorated sites by distance (pymatgen's
   neighbour list, periodic images counted), one symmetric bond-count matrix ``C_s`` per
   shell, so that the number of B-B bonds of shell ``s`` is ``x^T C_s x / 2``.
2. :class:`PairClusterExpansion`: ``E(x) = J0 + J1 N_B + sum_s J_s N_BB^s`` fitted by
   least squares (ridge) to potential energies of random occupancies, with a k-fold
   cross-validated error. For a binary lattice gas this is the full point + pair cluster
   expansion: the A-A and A-B bond counts are linear in ``N_B`` and ``N_BB``.
3. :meth:`PairClusterExpansion.to_bqm`: a ``dimod`` ``BinaryQuadraticModel`` with the fixed
   composition as the quadratic penalty ``lambda (sum_i x_i - n_B)^2``.
4. :func:`anneal_bqm`: ``dwave-neal``'s simulated annealing, every read then repaired to the
   composition and refined by A<->B swap descent (single-flip annealing under a penalty
   freezes a few swaps short of the optimum); the distinct feasible orderings.
5. :func:`anneal_ordering`: the whole route, the best orderings re-scored with the
   potential, as structures.

:func:`enumerate_ground_state` solves the same model exhaustively (plain
``itertools.combinations``, symmetry-equivalent orderings included) to check the annealer.
:class:`QuboGenerator` is the ``qubo`` strategy of ``matfuse csp``.

>>> from ase.build import bulk  # doctest: +SKIP
>>> parent = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.8, cubic=True)) * 2  # +SKIP
>>> result = anneal_ordering(parent, "Cu", "Au", 16, seed=0)  # doctest: +SKIP
>>> result.structures[0].composition.reduced_formula  # doctest: +SKIP
'AuCu'
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure

from matfuse.crystals.generators import (
    DEFAULT_MAX_ATOMS,
    Candidate,
    CandidateGenerator,
    register_generator,
)
from matfuse.rows import first_line

logger = logging.getLogger(__name__)

__all__ = [
    "EnergyFn",
    "OrderingResult",
    "PairClusterExpansion",
    "PairShells",
    "QuboGenerator",
    "anneal_bqm",
    "anneal_ordering",
    "compact_supercell",
    "decorate",
    "enumerate_ground_state",
    "pair_shells",
    "potential_energy_fn",
    "random_occupancies",
]

#: ``energy_fn(structures) -> energy per atom`` (eV/atom, NaN for a failed structure).
EnergyFn = Callable[[Sequence[Structure]], np.ndarray]


# ------------------------------------------------------------------------------ lattice


@dataclass(frozen=True)
class PairShells:
    """Bond counts between decorated sites, one ``(n, n)`` matrix per neighbour shell.

    ``counts[s][i, j]`` is how many shell-``s`` bonds join decorated site ``i`` to ``j``
    (periodic images included; the diagonal holds a site's bonds to its own images, twice).
    """

    distances: tuple[float, ...]
    counts: np.ndarray  # (n_shells, n_sites, n_sites)

    @property
    def n_sites(self) -> int:
        return int(self.counts.shape[1])

    def bond_counts(self, occupancies: np.ndarray) -> np.ndarray:
        """B-B bonds per shell, ``(n_samples, n_shells)``: ``x^T C_s x / 2``."""
        x = np.atleast_2d(np.asarray(occupancies, dtype=np.float64))
        return 0.5 * np.einsum("ni,sij,nj->ns", x, self.counts, x)


def pair_shells(
    structure: Structure,
    sites: Sequence[int] | None = None,
    n_shells: int = 3,
    tol: float = 1e-3,
) -> PairShells:
    """The first ``n_shells`` neighbour shells between ``sites`` of ``structure`` (all by
    default), found by distance with pymatgen's neighbour list."""
    idx = list(range(len(structure))) if sites is None else [int(i) for i in sites]
    if len(idx) < 2 or n_shells < 1:
        raise ValueError("need at least two decorated sites and one shell")
    position = {site: k for k, site in enumerate(idx)}
    cutoff = 2.0 * (structure.volume / len(structure)) ** (1 / 3)
    for _ in range(20):
        centers, points, _, dist = structure.get_neighbor_list(cutoff)
        keep = np.isin(centers, idx) & np.isin(points, idx)
        if keep.any():
            shells = np.unique(np.round(dist[keep] / tol) * tol)
            if len(shells) > n_shells:  # one more than needed: the last shell is complete
                break
        cutoff *= 1.4
    else:
        raise ValueError("could not find the neighbour shells (is the cell degenerate?)")
    shells = shells[:n_shells]
    counts = np.zeros((len(shells), len(idx), len(idx)))
    for c, p, d in zip(centers[keep], points[keep], dist[keep], strict=True):
        s = int(np.argmin(np.abs(shells - d)))
        if abs(shells[s] - d) <= 2 * tol:
            counts[s, position[int(c)], position[int(p)]] += 1
    return PairShells(tuple(float(d) for d in shells), counts)


def _hnf_matrices(det: int) -> Iterator[np.ndarray]:
    """Every upper-triangular Hermite normal form with determinant ``det``: the rows of
    ``H @ cell`` span each distinct supercell lattice of that size exactly once."""
    for a in range(1, det + 1):
        if det % a:
            continue
        for c in range(1, det // a + 1):
            if (det // a) % c:
                continue
            f = det // (a * c)
            for b, d, e in itertools.product(range(c), range(f), range(f)):
                yield np.array([[a, b, d], [0, c, e], [0, 0, f]])


def _compactness(matrix: np.ndarray) -> tuple[float, float]:
    """(shortest lattice vector, minus the summed lengths of the LLL-reduced basis): larger
    is more compact; the second term prefers the cubic cell among equally short ones."""
    reduced = Lattice(matrix).get_lll_reduced_lattice().matrix
    coeffs = np.array([v for v in itertools.product((-1, 0, 1), repeat=3) if any(v)])
    shortest = float(np.linalg.norm(coeffs @ reduced, axis=1).min())
    return round(shortest, 4), -round(float(np.linalg.norm(reduced, axis=1).sum()), 4)


@lru_cache(maxsize=64)
def _compact_hnf(lattice: tuple[float, ...], det: int) -> tuple[tuple[int, ...], ...]:
    matrix = np.array(lattice).reshape(3, 3)
    best = max(_hnf_matrices(det), key=lambda h: _compactness(h @ matrix))
    return tuple(tuple(int(v) for v in row) for row in best)


def compact_supercell(structure: Structure, multiple: int) -> Structure:
    """The supercell ``multiple`` times the cell whose periodic images are farthest apart.

    Why: a pair model in a small cell sees a site's own images as neighbours; of all
    supercells of one size (every Hermite normal form) the one with the longest shortest
    lattice vector keeps those self-interactions to the fewest shells (for fcc and 4 sites,
    the cubic cell).
    """
    if multiple < 1:
        raise ValueError(f"supercell multiple must be at least 1 (got {multiple})")
    key = tuple(float(v) for v in np.round(structure.lattice.matrix, 6).reshape(-1))
    h = _compact_hnf(key, int(multiple))
    cell = structure.make_supercell(np.array(h), in_place=False).get_reduced_structure("LLL")
    if np.linalg.det(cell.lattice.matrix) < 0:  # LLL may flip handedness; CHGNet refuses that
        cell = Structure(
            Lattice(-cell.lattice.matrix),
            cell.species,
            -cell.frac_coords,
            site_properties=cell.site_properties or None,
        )
    return cell


# ------------------------------------------------------------------------- occupancies


def random_occupancies(
    n_sites: int,
    n_dopant: int,
    n_samples: int,
    seed: int | np.random.Generator = 0,
    spread: int = 0,
) -> np.ndarray:
    """Distinct random 0/1 occupancies with ``n_dopant +- spread`` ones (fewer rows when
    fewer distinct ones exist)."""
    rng = np.random.default_rng(seed)
    counts = [k for k in range(n_dopant - spread, n_dopant + spread + 1) if 0 <= k <= n_sites]
    total = sum(math.comb(n_sites, k) for k in counts)
    target = min(int(n_samples), total)
    seen: set[bytes] = set()
    rows: list[np.ndarray] = []
    while len(rows) < target:
        x = np.zeros(n_sites, dtype=np.int8)
        x[rng.choice(n_sites, size=int(rng.choice(counts)), replace=False)] = 1
        if x.tobytes() not in seen:
            seen.add(x.tobytes())
            rows.append(x)
    return np.array(rows, dtype=np.int8).reshape(-1, n_sites)


def decorate(
    parent: Structure,
    sites: Sequence[int],
    occupancy: np.ndarray,
    host: str,
    dopant: str | None,
) -> Structure:
    """``parent`` with ``dopant`` (a vacancy when ``None``) on the decorated sites where
    ``occupancy`` is 1 and ``host`` where it is 0; other sites untouched."""
    s = parent.copy()
    for site, x in zip(sites, occupancy, strict=True):
        s.replace(int(site), dopant if (x and dopant is not None) else host)
    if dopant is None:
        s.remove_sites([int(site) for site, x in zip(sites, occupancy, strict=True) if x])
    return s


# -------------------------------------------------------------------- cluster expansion


class PairClusterExpansion:
    """Point + pair cluster expansion of a binary lattice gas, linear in its ECIs.

    ``E(x) = J0 + J1 N_B + sum_s J_s N_BB^s`` (eV per cell). ``alpha`` is the ridge
    penalty (0: plain least squares). After :meth:`fit`: ``ecis_`` = ``[J0, J1, J_1..J_S]``,
    ``cv_rmse_`` and ``train_rmse_`` in eV per decorated site (``cv`` folds; NaN with fewer
    than ``cv`` samples).
    """

    def __init__(self, shells: PairShells, alpha: float = 1e-6, cv: int = 5) -> None:
        self.shells = shells
        self.alpha = alpha
        self.cv = cv

    def features(self, occupancies: np.ndarray) -> np.ndarray:
        """``[N_B, N_BB^1, ..., N_BB^S]`` per row."""
        x = np.atleast_2d(np.asarray(occupancies, dtype=np.float64))
        return np.column_stack([x.sum(axis=1), self.shells.bond_counts(x)])

    def _regressor(self) -> Any:
        from sklearn.linear_model import LinearRegression, Ridge

        return Ridge(alpha=self.alpha) if self.alpha > 0 else LinearRegression()

    def fit(self, occupancies: np.ndarray, energies: np.ndarray) -> PairClusterExpansion:
        """Fit to total energies per cell (eV); rows with a non-finite energy are left out."""
        from sklearn.model_selection import KFold, cross_val_predict

        y = np.asarray(energies, dtype=np.float64)
        ok = np.isfinite(y)
        X = self.features(np.asarray(occupancies)[ok])
        y = y[ok]
        if len(y) < 2:
            raise ValueError(f"need at least 2 finite training energies (got {len(y)})")
        model = self._regressor().fit(X, y)
        self.ecis_ = np.concatenate([[model.intercept_], model.coef_])
        per_site = float(self.shells.n_sites)
        self.train_rmse_ = float(np.sqrt(np.mean((model.predict(X) - y) ** 2))) / per_site
        self.cv_rmse_ = float("nan")
        if len(y) >= max(2, self.cv):
            folds = KFold(self.cv, shuffle=True, random_state=0)
            pred = cross_val_predict(self._regressor(), X, y, cv=folds)
            self.cv_rmse_ = float(np.sqrt(np.mean((pred - y) ** 2))) / per_site
        self.n_train_ = int(len(y))
        return self

    def predict(self, occupancies: np.ndarray) -> np.ndarray:
        """Energy per cell (eV) of each occupancy."""
        return self.ecis_[0] + self.features(occupancies) @ self.ecis_[1:]

    def qubo_terms(self) -> tuple[float, np.ndarray, np.ndarray]:
        """``(offset, linear (n,), quadratic (n, n) upper-triangular)``: ``E = offset +
        h.x + x^T Q x`` on binary ``x`` (the diagonal self-image bonds folded into ``h``)."""
        j = self.ecis_[2:]
        pair = np.einsum("s,sij->ij", j, self.shells.counts)
        linear = self.ecis_[1] + 0.5 * np.diag(pair)
        return float(self.ecis_[0]), linear, np.triu(pair, k=1)

    def to_bqm(self, n_dopant: int, lagrange: float | None = None) -> Any:
        """The ordering problem at ``n_dopant`` B atoms as a ``dimod.BinaryQuadraticModel``.

        The default penalty is twice the largest energy one flip can change: an
        occupancy with ``k`` B atoms too many or too few pays ``lambda k^2`` and can gain
        at most ``k`` times that bound, so no infeasible state beats the feasible optimum.
        """
        import dimod

        offset, h, q = self.qubo_terms()
        n = len(h)
        if not 0 <= n_dopant <= n:
            raise ValueError(f"n_dopant must be within 0-{n} (got {n_dopant})")
        flip = np.abs(h) + np.abs(q).sum(axis=0) + np.abs(q).sum(axis=1)
        lam = float(lagrange) if lagrange is not None else 2.0 * float(flip.max()) + 1e-6
        rows, cols = np.nonzero(q)
        bqm = dimod.BinaryQuadraticModel(
            {i: float(h[i]) for i in range(n)},
            {(int(i), int(k)): float(q[i, k]) for i, k in zip(rows, cols, strict=True)},
            offset,
            dimod.BINARY,
        )
        bqm.add_linear_equality_constraint(
            [(i, 1.0) for i in range(n)], lagrange_multiplier=lam, constant=-float(n_dopant)
        )
        return bqm


# ---------------------------------------------------------------------------- solving


def _swap_descent(x: np.ndarray, h: np.ndarray, w: np.ndarray, n_dopant: int) -> np.ndarray:
    """Repair the composition greedily, then take the best energy-lowering A<->B swap
    until none is left (Kawasaki local search).

    Why: single-flip annealing must pass through an infeasible state, which the penalty
    makes costly, to move a B atom, so at low temperature it freezes a few swaps short of
    the optimum. On a feasible state the penalty is the same for every swap, so the
    ordering BQM's own terms (``h``, symmetric ``w``) rank them correctly.
    """
    x = x.astype(np.float64).copy()
    field = h + w @ x  # energy change of switching site i on
    while x.sum() > n_dopant:
        b = np.flatnonzero(x == 1)
        i = b[np.argmax(field[b])]
        x[i], field = 0.0, field - w[:, i]
    while x.sum() < n_dopant:
        a = np.flatnonzero(x == 0)
        j = a[np.argmin(field[a])]
        x[j], field = 1.0, field + w[:, j]
    while 0 < n_dopant < len(x):
        b, a = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
        gain = field[a][None, :] - field[b][:, None] - w[np.ix_(b, a)]
        k = np.unravel_index(int(np.argmin(gain)), gain.shape)
        if gain[k] >= -1e-12:
            break
        i, j = b[k[0]], a[k[1]]
        x[i], x[j] = 0.0, 1.0
        field += w[:, j] - w[:, i]
    return x.astype(np.int8)


def anneal_bqm(
    bqm: Any,
    n_dopant: int,
    *,
    num_reads: int = 100,
    num_sweeps: int = 1000,
    seed: int = 0,
    polish: bool = True,
) -> tuple[np.ndarray, float]:
    """Simulated annealing (``dwave-neal``) of an ordering BQM over variables ``0..n-1``.

    With ``polish`` (default) every read is repaired to the composition and refined by
    swap descent (:func:`_swap_descent`); without it infeasible reads are dropped.
    Returns the distinct feasible occupancies (lowest BQM energy first) and the fraction
    of raw reads that were already feasible.
    """
    import neal

    n = bqm.num_variables
    sampler = neal.SimulatedAnnealingSampler()
    samples = sampler.sample(bqm, num_reads=num_reads, num_sweeps=num_sweeps, seed=int(seed))
    order = [list(samples.variables).index(i) for i in range(n)]
    x = np.asarray(samples.record.sample)[:, order].astype(np.int8)
    feasible = x.sum(axis=1) == n_dopant
    fraction = float(feasible.mean()) if len(feasible) else 0.0
    if polish:
        linear, (rows, cols, values), _ = bqm.to_numpy_vectors(variable_order=list(range(n)))
        w = np.zeros((n, n))
        np.add.at(w, (rows, cols), values)
        w = w + w.T
        x = np.array([_swap_descent(xi, np.asarray(linear), w, n_dopant) for xi in x])
    else:
        x = x[feasible]
    energy = np.asarray(bqm.energies((x, list(range(n)))), dtype=np.float64).reshape(-1)
    rank = np.lexsort((np.arange(len(x)), energy))
    unique, seen = [], set()
    for i in rank:
        key = x[i].tobytes()
        if key not in seen:
            seen.add(key)
            unique.append(x[i])
    return np.array(unique, dtype=np.int8).reshape(-1, n), fraction


def enumerate_ground_state(
    model: PairClusterExpansion, n_dopant: int, chunk: int = 100_000
) -> tuple[np.ndarray, float, int]:
    """Exhaustive minimum of the model over every placement of ``n_dopant`` B atoms.

    Plain ``itertools.combinations`` (symmetry-equivalent orderings are all visited), in
    numpy chunks. Returns ``(occupancy, energy per cell, number of orderings)``.
    """
    offset, h, q = model.qubo_terms()
    n = len(h)
    best_x, best_e, total = np.zeros(n, dtype=np.int8), math.inf, 0
    combos = itertools.combinations(range(n), n_dopant)
    while True:
        block = np.array(list(itertools.islice(combos, chunk)), dtype=np.int64)
        if block.size == 0 and not (n_dopant == 0 and total == 0):
            break
        block = block.reshape(-1, n_dopant)
        x = np.zeros((len(block), n))
        np.put_along_axis(x, block, 1.0, axis=1)
        e = offset + x @ h + np.einsum("ni,ni->n", x @ q, x)
        k = int(np.argmin(e))
        if e[k] < best_e:
            best_x, best_e = x[k].astype(np.int8), float(e[k])
        total += len(block)
        if n_dopant == 0:
            break
    return best_x, best_e, total


# --------------------------------------------------------------------------------- API


def potential_energy_fn(
    potential: str = "chgnet", relax: bool = False, steps: int = 100
) -> EnergyFn:
    """Energy per atom from a pretrained potential (``chgnet`` or ``sevennet``), as single
    points on the fixed lattice or after relaxation (``relax=True``, ``steps`` FIRE steps)."""
    if potential not in ("chgnet", "sevennet"):
        raise ValueError(f"unknown potential {potential!r}; choose chgnet or sevennet")

    def energies(structures: Sequence[Structure]) -> np.ndarray:
        if potential == "sevennet":
            from matfuse.materials.sevennet import predict_sevennet, relax_structures

            if relax:
                results = relax_structures(list(structures), steps=steps)
                return np.array([r.energy_per_atom if r.error is None else np.nan for r in results])
            return predict_sevennet(list(structures))[0]
        from matfuse.materials.energy import energies_per_atom

        return energies_per_atom(list(structures), relax=relax, steps=steps)[0]

    return energies


@dataclass
class OrderingResult:
    """The annealed orderings, best first by the potential's energy.

    ``model_energies`` are the cluster expansion's (eV per cell); ``energies_per_atom``
    the potential's re-scoring (NaN where ``errors[i]`` is set).
    """

    structures: list[Structure]
    occupancies: np.ndarray
    model_energies: np.ndarray
    energies_per_atom: np.ndarray
    errors: list[str | None]
    expansion: PairClusterExpansion
    feasible_fraction: float
    n_potential_calls: int
    cpu_seconds: dict[str, float] = field(default_factory=dict)


def anneal_ordering(
    parent: Structure,
    host: str,
    dopant: str | None,
    n_dopant: int,
    *,
    sites: Sequence[int] | None = None,
    energy_fn: EnergyFn | None = None,
    n_train: int = 40,
    n_shells: int = 3,
    alpha: float = 1e-6,
    spread: int = 0,
    top_k: int = 5,
    num_reads: int = 100,
    num_sweeps: int = 1000,
    seed: int = 0,
    polish: bool = True,
) -> OrderingResult:
    """The lowest-energy placements of ``n_dopant`` ``dopant`` atoms (vacancies when
    ``None``) on the ``host`` sites of ``parent``: fit, anneal, re-score.

    ``sites`` are the decorated sites (default: every ``host`` site). ``energy_fn``
    defaults to CHGNet single points. The training set is ``n_train`` distinct random
    occupancies with ``n_dopant +- spread`` B atoms; the ``top_k`` distinct annealed
    orderings are re-scored with ``energy_fn`` and returned best first. ``polish``: see
    :func:`anneal_bqm`.
    """
    idx = (
        [i for i, s in enumerate(parent) if s.specie.symbol == host]
        if sites is None
        else [int(i) for i in sites]
    )
    if not idx:
        raise ValueError(f"no {host} site to decorate in {parent.composition.reduced_formula}")
    if not 0 < n_dopant < len(idx):
        raise ValueError(f"n_dopant must be within 1-{len(idx) - 1} (got {n_dopant})")
    energy_fn = energy_fn or potential_energy_fn()
    clock: dict[str, float] = {}

    def timed(name: str, started: float) -> None:
        clock[name] = clock.get(name, 0.0) + time.process_time() - started

    t = time.process_time()
    shells = pair_shells(parent, idx, n_shells)
    train = random_occupancies(len(idx), n_dopant, n_train, seed=seed, spread=spread)
    structures = [decorate(parent, idx, x, host, dopant) for x in train]
    timed("setup", t)
    t = time.process_time()
    per_atom = np.asarray(energy_fn(structures), dtype=np.float64)
    timed("train_energies", t)
    t = time.process_time()
    totals = per_atom * np.array([len(s) for s in structures])
    if not np.isfinite(totals).all():
        logger.warning("%d training energies failed", int((~np.isfinite(totals)).sum()))
    model = PairClusterExpansion(shells, alpha=alpha).fit(train, totals)
    timed("fit", t)
    t = time.process_time()
    found, fraction = anneal_bqm(
        model.to_bqm(n_dopant),
        n_dopant,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        seed=seed,
        polish=polish,
    )
    timed("anneal", t)
    if len(found) == 0:
        raise RuntimeError("annealing returned no feasible ordering; raise the penalty")
    best = found[np.argsort(model.predict(found), kind="stable")][:top_k]
    decorated = [decorate(parent, idx, x, host, dopant) for x in best]
    t = time.process_time()
    rescored = np.asarray(energy_fn(decorated), dtype=np.float64)
    timed("rescore", t)
    errors = [None if np.isfinite(e) else "potential failed on this ordering" for e in rescored]
    order = np.lexsort((np.arange(len(best)), np.where(np.isfinite(rescored), rescored, np.inf)))
    return OrderingResult(
        structures=[decorated[i] for i in order],
        occupancies=best[order],
        model_energies=model.predict(best[order]),
        energies_per_atom=rescored[order],
        errors=[errors[i] for i in order],
        expansion=model,
        feasible_fraction=fraction,
        n_potential_calls=len(structures) + len(decorated),
        cpu_seconds=clock,
    )


# --------------------------------------------------------------------------- generator


def _volume_per_atom(symbol: str) -> float:
    """Atomic volume of an element's reference state (ASE), else from its atomic radius."""
    try:
        from ase.build import bulk

        atoms = bulk(symbol)
        return float(atoms.get_volume()) / len(atoms)
    except Exception:
        radius = Element(symbol).atomic_radius or 1.5
        return float(4 / 3 * math.pi * float(radius) ** 3 / 0.74)  # close-packed spheres


def default_parent(composition: Composition, lattice: str = "fcc") -> Structure:
    """A one-site ``fcc`` or ``bcc`` primitive cell at Vegard's-law atomic volume."""
    comp = composition.fractional_composition
    volume = sum(float(a) * _volume_per_atom(el.symbol) for el, a in comp.items())
    symbol = max(comp, key=lambda el: (comp[el], el.symbol)).symbol
    if lattice == "fcc":
        a = (4 * volume) ** (1 / 3)
        matrix = [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]
    elif lattice == "bcc":
        a = (2 * volume) ** (1 / 3)
        matrix = [[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]]
    else:
        raise ValueError(f"unknown parent lattice {lattice!r}; choose fcc or bcc")
    return Structure(Lattice(matrix), [symbol], [[0, 0, 0]])


class QuboGenerator(CandidateGenerator):
    """Annealed orderings of a binary composition on a parent lattice (``qubo``).

    For every cell size in the ``z`` range (smallest first), the most compact supercell of
    the parent (default: fcc at Vegard's-law volume; ``parent`` may be any structure whose
    sites are all decorated) gets a pair cluster expansion fitted to ``n_train`` single
    points of the potential, annealed (:func:`anneal_ordering`); its ``per_cell`` best
    orderings are proposed, dropping ones that match an earlier proposal. The stream is
    finite and depends on the seed through the training set and the annealer. The energies
    come from ``energy_fn`` or else the named ``potential`` (``chgnet`` or ``sevennet``,
    single points): use the potential the search relaxes with.
    """

    name = "qubo"
    description = "binary-alloy site orderings: pair cluster expansion + simulated annealing"

    def __init__(
        self,
        composition: str | Composition,
        *,
        z: tuple[int, int] = (1, 4),
        seed: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        parent: Structure | str = "fcc",
        energy_fn: EnergyFn | None = None,
        potential: str = "chgnet",
        n_train: int = 32,
        per_cell: int = 2,
        n_shells: int = 3,
    ) -> None:
        super().__init__(composition, z=z, seed=seed, max_atoms=max_atoms)
        if len(self.composition) != 2:
            raise ValueError(
                f"qubo orders binary alloys; {self.composition.reduced_formula} has "
                f"{len(self.composition)} elements"
            )
        self.parent = parent
        self.energy_fn = energy_fn or potential_energy_fn(potential)
        self.potential = potential
        self.n_train = int(n_train)
        self.per_cell = int(per_cell)
        self.n_shells = int(n_shells)

    def _parent(self) -> Structure:
        if isinstance(self.parent, Structure):
            return self.parent
        return default_parent(self.composition, self.parent)

    def candidates(self) -> Iterator[Candidate]:
        from matfuse.crystals.matching import mattergen_matcher

        parent = self._parent()
        host, dopant = sorted(el.symbol for el in self.composition)
        label = self.parent if isinstance(self.parent, str) else "parent"
        matcher = mattergen_matcher()
        kept: list[Structure] = []
        per_unit = int(self.composition.num_atoms)
        for z in range(self.z[0], self.z[1] + 1):
            n_atoms = z * per_unit
            if n_atoms % len(parent):
                continue
            cell = compact_supercell(parent, n_atoms // len(parent))
            cell.replace_species({sp: host for sp in cell.composition.elements})
            n_dopant = z * int(self.composition[dopant])
            try:
                result = anneal_ordering(
                    cell,
                    host,
                    dopant,
                    n_dopant,
                    energy_fn=self.energy_fn,
                    n_train=self.n_train,
                    n_shells=self.n_shells,
                    top_k=self.per_cell,
                    seed=self.seed,
                )
            except (ValueError, RuntimeError) as exc:
                logger.warning("qubo at %d atoms: %s", n_atoms, first_line(exc))
                continue
            for rank, s in enumerate(result.structures):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if any(matcher.fit(s, k) for k in kept):
                        continue
                kept.append(s)
                yield Candidate(s, f"qubo:{label}:N={n_atoms}:rank={rank}")


register_generator(QuboGenerator, {"annealing", "ordering"})
