"""Objectives: what a generated molecule should be, as a declarative spec.

An objective is a list of *terms*, each turning a molecule into a desirability in [0, 1], and an
aggregation that combines them into one score. Property-model terms follow Bayesian molecular
design (Ikebata et al. 2017): a trained matfuse ``PropertyModel`` predicts a mean mu and a
standard deviation sigma, and the term is the probability that the property lands in the target
range U, p(Y in U | S) = Phi((high - mu) / sigma) - Phi((low - mu) / sigma), so an uncertain
prediction near the window edge scores about 0.5 rather than pretending to be a hit.

Spec format (YAML or JSON; the same dict in Python)::

    aggregate: geometric        # geometric (default) | product | weighted-sum | pareto
    terms:
      - property: qed           # an RDKit property: qed logp tpsa sa mw heavy_atoms rings
        goal: maximize          #   aromatic_rings max_ring_size hbd hba rotatable_bonds
      - property: logp          #   pains_alerts
        min: 1.0                # a window (either bound optional): 1 inside, 0 outside,
        max: 3.0                # or a Gaussian fall-off of width `sigma` outside
        sigma: 0.5
      - property: sa
        goal: minimize          # maximize/minimize: linear between `scale: [worst, best]`
      - property: model         # a saved matfuse PropertyModel directory
        path: models/solubility
        output: SOL             # which target of the model (default: its first)
        min: -3.0               # p(Y in [min, max] | S) from the predicted mean and std
        max: -1.0
      - property: similarity    # Tanimoto (Morgan r=2, 2048 bits) to a seed molecule
        smiles: CC(=O)Oc1ccccc1C(=O)O
        goal: maximize
      - property: substructure  # SMARTS filter: 1 if absent (exclude) or present (require)
        smarts: "[N+](=O)[O-]"
        exclude: true
      - property: pains         # 1 if no PAINS alert (RDKit FilterCatalog), else 0
    # every term also takes `name:` (its column name) and `weight:` (default 1)

Goals: ``maximize`` / ``minimize`` (a linear ramp over ``scale``, with defaults for bounded
properties), a window (``min`` and/or ``max``, optional ``sigma`` softness), or ``target`` with
``value`` and ``sigma`` (a Gaussian). Aggregations: ``geometric`` is the weighted geometric mean
(a zero in any term vetoes the molecule, which is what a hard constraint means), ``product`` the
weighted product, ``weighted-sum`` the weighted mean, and ``pareto`` searches on the geometric
mean but ranks the final table by Pareto front first (see :func:`pareto_ranks`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from rdkit import Chem
from scipy.special import ndtr, ndtri

from matfuse.chem.similarity import morgan_bitvect
from matfuse.chem.standardize import canonical_smiles, to_mol
from matfuse.generate.modifiers import ClippedScoreModifier, GaussianModifier, WindowModifier
from matfuse.generate.properties import PROPERTIES, compute_property, pains_catalog
from matfuse.registry import Registry

__all__ = [
    "AGGREGATIONS",
    "CallableTerm",
    "ModelTerm",
    "Objective",
    "PainsTerm",
    "PropertyTerm",
    "SimilarityTerm",
    "SpecError",
    "SubstructureTerm",
    "TERMS",
    "Term",
    "TermKind",
    "TermSpec",
    "aggregate_scores",
    "in_window_probability",
    "load_objective",
    "make_term",
    "pareto_ranks",
    "register_term",
    "term_choices",
]

AGGREGATIONS = ("geometric", "product", "weighted-sum", "pareto")
GOALS = ("maximize", "minimize", "range", "target")
#: default [worst, best] ramps for ``goal: maximize`` (reversed for minimize)
DEFAULT_SCALES: dict[str, tuple[float, float]] = {
    "qed": (0.0, 1.0),
    "similarity": (0.0, 1.0),
    "sa": (1.0, 10.0),
    "logp": (-2.0, 6.0),
    "tpsa": (0.0, 140.0),
    "mw": (100.0, 600.0),
}


class SpecError(ValueError):
    """The objective spec is malformed; the message says which term and key."""


# -- the probability at the heart of Bayesian molecular design ---------------------------
def in_window_probability(
    mean: np.ndarray, std: np.ndarray, low: float | None, high: float | None
) -> np.ndarray:
    """p(low <= Y <= high) for Y ~ N(mean, std^2); std <= 0 or NaN gives the 0/1 indicator.

    >>> p = in_window_probability(np.array([0.0]), np.array([1.0]), -1.96, 1.96)
    >>> round(float(p[0]), 3)
    0.95
    """
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    lo = -np.inf if low is None else float(low)
    hi = np.inf if high is None else float(high)
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = ndtr((hi - mean) / std) - ndtr((lo - mean) / std)
    exact = ((mean >= lo) & (mean <= hi)).astype(float)
    certain = ~np.isfinite(std) | (std <= 0)
    out = np.where(certain, exact, prob)
    return np.where(np.isnan(mean), np.nan, np.clip(out, 0.0, 1.0))


# -- terms -------------------------------------------------------------------------------
@dataclass
class TermResult:
    """Raw value, desirability and (for model terms) the predictive std of each molecule."""

    raw: np.ndarray
    desirability: np.ndarray
    std: np.ndarray | None = None


@dataclass
class Term:
    """One criterion. Subclasses implement :meth:`evaluate` on a list of valid molecules."""

    name: str
    weight: float = 1.0

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:  # pragma: no cover - interface
        raise NotImplementedError


def _goal_modifier(
    term: str,
    goal: str,
    *,
    low: float | None,
    high: float | None,
    value: float | None,
    sigma: float | None,
    scale: Sequence[float] | None,
    default_scale: tuple[float, float] | None,
) -> Callable[[np.ndarray], np.ndarray]:
    """The desirability function a goal describes (validated here, once, not per molecule)."""
    if goal == "range":
        if low is None and high is None:
            raise SpecError(f"term {term!r}: a window needs min and/or max")
        if low is not None and high is not None and low > high:
            raise SpecError(f"term {term!r}: min {low} is above max {high}")
        return WindowModifier(low, high, float(sigma or 0.0))
    if goal == "target":
        if value is None or not sigma or sigma <= 0:
            raise SpecError(f"term {term!r}: goal 'target' needs `value` and a positive `sigma`")
        return GaussianModifier(value, sigma)
    ramp = tuple(scale) if scale is not None else default_scale
    if ramp is None:
        raise SpecError(
            f"term {term!r}: goal {goal!r} needs `scale: [worst, best]` for this property"
        )
    if len(ramp) != 2 or ramp[0] == ramp[1]:
        raise SpecError(f"term {term!r}: `scale` must be two different numbers")
    worst, best = float(ramp[0]), float(ramp[1])
    if goal == "minimize" and scale is None:
        worst, best = best, worst  # defaults are written for maximising
    return ClippedScoreModifier(upper_x=best, lower_x=worst)


@dataclass
class PropertyTerm(Term):
    """An RDKit property (see :data:`matfuse.generate.properties.PROPERTIES`) and a goal."""

    prop: str = "qed"
    modifier: Callable[[np.ndarray], np.ndarray] = field(default=lambda x: x)

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        raw = np.array([compute_property(self.prop, m) for m in mols], dtype=float)
        return TermResult(raw, np.nan_to_num(self.modifier(raw), nan=0.0))


@dataclass
class SimilarityTerm(Term):
    """Tanimoto similarity (Morgan r=2, 2048 bits, as in ``matfuse.chem.similarity``) to a seed."""

    smiles: str = ""
    modifier: Callable[[np.ndarray], np.ndarray] = field(default=lambda x: x)

    def __post_init__(self) -> None:
        seed = to_mol(self.smiles)
        if seed is None:
            raise SpecError(f"term {self.name!r}: seed SMILES {self.smiles!r} is not valid")
        fp = morgan_bitvect(seed)
        assert fp is not None  # a parsed molecule always has a fingerprint
        self._fp = fp

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        from rdkit import DataStructs

        sims: list[float] = []
        for m in mols:  # parsed molecules only (Objective.evaluate drops the invalid rows)
            fp = morgan_bitvect(m)
            assert fp is not None  # a parsed molecule always has a fingerprint
            sims.append(DataStructs.TanimotoSimilarity(self._fp, fp))
        raw = np.array(sims, dtype=float)
        return TermResult(raw, np.clip(self.modifier(raw), 0.0, 1.0))


@dataclass
class SubstructureTerm(Term):
    """1 if the SMARTS is absent (``exclude``) or present (``require``), else 0."""

    smarts: str = ""
    exclude: bool = True

    def __post_init__(self) -> None:
        self._pattern = Chem.MolFromSmarts(self.smarts) if isinstance(self.smarts, str) else None
        if self._pattern is None:
            raise SpecError(f"term {self.name!r}: SMARTS {self.smarts!r} cannot be parsed")

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        hits = np.array([m.HasSubstructMatch(self._pattern) for m in mols], dtype=float)
        return TermResult(hits, 1.0 - hits if self.exclude else hits)


@dataclass
class PainsTerm(Term):
    """1 for molecules without a PAINS alert (RDKit FilterCatalog, families A-C), else 0."""

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        catalog = pains_catalog()
        hits = np.array([catalog.HasMatch(m) for m in mols], dtype=float)
        return TermResult(hits, 1.0 - hits)


@dataclass
class CallableTerm(Term):
    """Any Python function of a molecule returning a desirability in [0, 1] (Python API only)."""

    fn: Callable[[Chem.Mol], float] = field(default=lambda m: 0.0)

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        raw = np.array([float(self.fn(m)) for m in mols], dtype=float)
        return TermResult(raw, np.clip(np.nan_to_num(raw, nan=0.0), 0.0, 1.0))


@dataclass
class ModelTerm(Term):
    """A target of a saved matfuse ``PropertyModel``, scored with its uncertainty.

    Regression windows give p(Y in [low, high] | S) under N(mean, std^2). The std comes from
    the model's own uncertainty estimate; if the model only has intervals, sigma is read off
    the interval width (width / (2 z_{1-alpha/2})). Classification targets give the predicted
    probability of the positive class (``minimize`` gives one minus it).
    """

    path: str = ""
    output: str | None = None
    goal: str = "range"
    low: float | None = None
    high: float | None = None
    modifier: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        from matfuse.pipeline import PropertyModel

        try:
            self._model = PropertyModel.load(self.path)
        except (FileNotFoundError, ValueError, OSError) as err:
            raise SpecError(
                f"term {self.name!r}: cannot load model at {self.path!r}: {err}"
            ) from err
        names = list(self._model.target_names_)
        if self.output is None:
            self.output = names[0]
        if self.output not in names:
            raise SpecError(f"term {self.name!r}: model has targets {names}, not {self.output!r}")
        self._j = names.index(self.output)
        self._kind = self._model.task_types_[self._j]
        if self._kind == "regression" and self.goal in ("maximize", "minimize"):
            if self.modifier is None:
                raise SpecError(
                    f"term {self.name!r}: goal {self.goal!r} on a regression target needs "
                    "`scale: [worst, best]` (or use min/max for a window)"
                )

    def evaluate(self, mols: list[Chem.Mol]) -> TermResult:
        return self.evaluate_inputs([Chem.MolToSmiles(m) for m in mols])

    def evaluate_inputs(self, inputs: Sequence[Any]) -> TermResult:
        """The term on inputs of the model's own kind (SMILES, formulas, structures)."""
        res = self._model.predict_with_uncertainty(self._model.blocks(list(inputs)))
        mean = res["pred"][:, self._j]
        std = res["std"][:, self._j]
        if self._kind != "regression":
            d = mean if self.goal != "minimize" else 1.0 - mean
            return TermResult(mean, np.nan_to_num(d, nan=0.0), std)
        if not np.isfinite(std).any() and np.isfinite(res["interval"][:, self._j]).any():
            z = float(ndtri(1.0 - float(getattr(self._model, "alpha", 0.1)) / 2.0))
            lo, hi = res["interval"][:, self._j, 0], res["interval"][:, self._j, 1]
            std = (hi - lo) / (2.0 * z)
        if self.goal == "range":
            d = in_window_probability(mean, std, self.low, self.high)
        else:
            d = self.modifier(mean) if self.modifier is not None else mean
        return TermResult(mean, np.nan_to_num(d, nan=0.0), std)


# -- parsing a spec ----------------------------------------------------------------------
_COMMON_KEYS = {"property", "name", "weight", "goal", "min", "max", "value", "sigma", "scale"}


@dataclass(frozen=True)
class TermSpec:
    """The keys every term shares, parsed and checked; what a term kind's factory receives.

    ``spec`` is the raw mapping, for the kind's own keys (``smiles:``, ``path:``...).
    """

    spec: Mapping[str, Any]
    prop: str
    name: str
    weight: float
    goal: str
    low: float | None = None
    high: float | None = None
    value: float | None = None
    sigma: float | None = None
    scale: list[float] | None = None

    def modifier(
        self, default_scale: tuple[float, float] | None
    ) -> Callable[[np.ndarray], np.ndarray]:
        """The desirability function of this term's goal (``default_scale`` for a ramp)."""
        return _goal_modifier(
            self.name,
            self.goal,
            low=self.low,
            high=self.high,
            value=self.value,
            sigma=self.sigma,
            scale=self.scale,
            default_scale=default_scale,
        )


@dataclass(frozen=True)
class TermKind:
    """A kind of objective term: its factory and the spec keys it reads besides the common ones."""

    factory: Callable[[TermSpec], Term]
    keys: frozenset[str] = frozenset()


#: Term kinds named by ``property:`` besides the molecular properties of
#: :data:`matfuse.generate.properties.PROPERTIES` (``property: logp``), which all share
#: :class:`PropertyTerm`.
TERMS: Registry[TermKind] = Registry("term")


def register_term(
    name: str,
    factory: Callable[[TermSpec], Term],
    *,
    keys: Iterable[str] = (),
    description: str = "",
    tags: Iterable[str] = (),
    overwrite: bool = False,
) -> TermKind:
    """Make ``property: <name>`` build a term with ``factory`` (which may read ``keys``)."""
    kind = TermKind(factory, frozenset(keys))
    TERMS.add(name, kind, description=description, tags=tags, overwrite=overwrite)
    return kind


def term_choices() -> list[str]:
    """Every name a term's ``property:`` may take: the term kinds and the molecular properties."""
    return sorted({*TERMS.names(), *PROPERTIES.names()})


def _property_term(t: TermSpec) -> Term:
    key = PROPERTIES.resolve(t.prop)
    return PropertyTerm(t.name, t.weight, prop=key, modifier=t.modifier(DEFAULT_SCALES.get(key)))


def _pains_term(t: TermSpec) -> Term:
    return PainsTerm(t.name, t.weight)


def _substructure_term(t: TermSpec) -> Term:
    exclude = t.spec.get("exclude", True)
    if not isinstance(exclude, bool):
        raise SpecError(f"term {t.name!r}: exclude must be true or false")
    return SubstructureTerm(t.name, t.weight, smarts=t.spec.get("smarts", ""), exclude=exclude)


def _similarity_term(t: TermSpec) -> Term:
    smiles = t.spec.get("smiles")
    if not isinstance(smiles, str):
        raise SpecError(f"term {t.name!r}: similarity needs `smiles: <seed SMILES>`")
    return SimilarityTerm(t.name, t.weight, smiles=smiles, modifier=t.modifier((0.0, 1.0)))


def _model_term(t: TermSpec) -> Term:
    path = t.spec.get("path")
    if not isinstance(path, str | Path):
        raise SpecError(f"term {t.name!r}: model needs `path: <PropertyModel directory>`")
    output = t.spec.get("output")
    if output is not None and not isinstance(output, str):
        raise SpecError(f"term {t.name!r}: output must be a target name")
    # regression maximize/minimize needs an explicit scale (checked once the model's task
    # type is known); classification scores are probabilities and need none
    mod = t.modifier(None) if t.goal == "target" or t.scale is not None else None
    term = ModelTerm(
        t.name,
        t.weight,
        path=str(path),
        output=output,
        goal=t.goal,
        low=t.low,
        high=t.high,
        modifier=mod,
    )
    if "name" not in t.spec:  # default column name: the model's target, e.g. "SOL"
        term.name = str(term.output)
    return term


register_term(
    "model",
    _model_term,
    keys={"path", "output"},
    description="a target of a saved PropertyModel: p(Y in [min, max]) from its mean and std",
    tags={"model", "uncertainty"},
)
register_term(
    "similarity",
    _similarity_term,
    keys={"smiles"},
    description="Tanimoto similarity (Morgan r=2, 2048 bits) to a seed molecule",
    tags={"rdkit", "reference-molecule"},
)
register_term(
    "substructure",
    _substructure_term,
    keys={"smarts", "exclude"},
    description="1 if a SMARTS pattern is absent (exclude: true) or present (false)",
    tags={"rdkit", "filter"},
)
register_term(
    "pains",
    _pains_term,
    description="1 for molecules without a PAINS alert (RDKit, families A-C), else 0",
    tags={"rdkit", "filter"},
)
#: the kind of ``property: <a name in PROPERTIES>``
_PROPERTY_KIND = TermKind(_property_term)


def _term_kind(prop: Any) -> TermKind:
    if isinstance(prop, str):
        if prop in TERMS:
            return TERMS.get(prop)
        if prop in PROPERTIES:
            return _PROPERTY_KIND
    raise SpecError(f"term property must be one of {term_choices()}, got {prop!r}")


def _number(term: str, key: str, value: Any, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"term {term!r}: {key} must be a finite number, got {value!r}")
    return float(value)


def make_term(spec: Mapping[str, Any], kinds: Registry[TermKind] | None = None) -> Term:
    """Build one term from its spec dict (raises :class:`SpecError` with a clear message).

    ``property:`` names a term kind of :data:`TERMS` or a molecular property; the common keys
    are checked here, the kind's own keys by its factory. ``kinds`` replaces both by another
    registry (the crystal terms of :mod:`matfuse.crystals.objectives`).
    """
    if not isinstance(spec, Mapping):
        raise SpecError(f"each term must be a mapping, got {type(spec).__name__}")
    prop = spec.get("property")
    if kinds is None:
        kind = _term_kind(prop)
    elif isinstance(prop, str) and prop in kinds:
        kind = kinds.get(prop)
    else:
        raise SpecError(f"term property must be one of {kinds.names()}, got {prop!r}")
    name = spec.get("name", prop)
    if not isinstance(name, str) or not name:
        raise SpecError(f"term {prop!r}: name must be a non-empty string")
    unknown = set(spec) - _COMMON_KEYS - kind.keys
    if unknown:
        raise SpecError(f"term {name!r}: unknown key(s) {sorted(map(str, unknown))}")
    weight = _number(name, "weight", spec.get("weight", 1.0), allow_none=False)
    if weight is None or weight < 0:
        raise SpecError(f"term {name!r}: weight must be >= 0")
    low = _number(name, "min", spec.get("min"))
    high = _number(name, "max", spec.get("max"))
    value = _number(name, "value", spec.get("value"))
    sigma = _number(name, "sigma", spec.get("sigma"))
    if sigma is not None and sigma < 0:
        raise SpecError(f"term {name!r}: sigma must be >= 0")
    scale = spec.get("scale")
    if scale is not None:
        if not isinstance(scale, list | tuple) or len(scale) != 2:
            raise SpecError(f"term {name!r}: scale must be [worst, best]")
        scale = [_number(name, "scale", s, allow_none=False) for s in scale]
    goal = spec.get("goal")
    if goal is None:
        goal = (
            "range"
            if (low is not None or high is not None)
            else ("target" if value is not None else "maximize")
        )
    if goal not in GOALS:
        raise SpecError(f"term {name!r}: goal must be one of {GOALS}, got {goal!r}")
    assert isinstance(prop, str)  # _term_kind refused anything else
    parsed = TermSpec(spec, prop, name, weight, goal, low, high, value, sigma, scale)
    return kind.factory(parsed)


# -- aggregation -------------------------------------------------------------------------
def aggregate_scores(d: np.ndarray, weights: np.ndarray, how: str) -> np.ndarray:
    """Combine an (n, k) desirability matrix into n scores in [0, 1]."""
    d = np.clip(np.nan_to_num(np.asarray(d, dtype=float), nan=0.0), 0.0, 1.0)
    w = np.asarray(weights, dtype=float)
    if d.shape[1] == 0:
        return np.zeros(d.shape[0])
    total = w.sum()
    if total <= 0:
        raise SpecError("at least one term needs a positive weight")
    if how == "weighted-sum":
        return d @ w / total
    with np.errstate(divide="ignore"):
        logs = np.where(w > 0, np.log(d) * w, 0.0)
    if how == "product":
        return np.exp(logs.sum(axis=1))
    if how in ("geometric", "pareto"):
        return np.exp(logs.sum(axis=1) / total)
    raise SpecError(f"aggregate must be one of {AGGREGATIONS}, got {how!r}")


def pareto_ranks(d: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank of each row (1 = Pareto front), all columns maximised."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    ranks = np.zeros(n, dtype=int)
    remaining = np.arange(n)
    rank = 1
    while remaining.size:
        sub = d[remaining]
        ge = (sub[:, None, :] >= sub[None, :, :]).all(axis=2)
        gt = (sub[:, None, :] > sub[None, :, :]).any(axis=2)
        dominated = (ge & gt).any(axis=0)
        front = remaining[~dominated]
        ranks[front] = rank
        remaining = remaining[dominated]
        rank += 1
    return ranks


# -- the objective -----------------------------------------------------------------------
@dataclass
class Objective:
    """Terms plus an aggregation; scores SMILES batches into a row-aligned table."""

    terms: list[Term]
    aggregate: str = "geometric"
    #: the term kinds :meth:`from_spec` reads (``None``: the molecular ones)
    term_kinds: ClassVar[Registry[TermKind] | None] = None

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATIONS:
            raise SpecError(f"aggregate must be one of {AGGREGATIONS}, got {self.aggregate!r}")
        if not self.terms:
            raise SpecError("an objective needs at least one term")
        if sum(t.weight for t in self.terms) <= 0:
            raise SpecError("at least one term needs a positive weight")
        names = [t.name for t in self.terms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"term names must be unique; repeated: {dupes} (set `name:`)")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Objective:
        """Build from a dict such as the parsed YAML above."""
        if not isinstance(spec, Mapping):
            raise SpecError(f"an objective spec is a mapping, got {type(spec).__name__}")
        unknown = set(spec) - {"terms", "aggregate", "description"}
        if unknown:
            raise SpecError(f"unknown top-level key(s) {sorted(map(str, unknown))}")
        terms = spec.get("terms")
        if not isinstance(terms, list) or not terms:
            raise SpecError("`terms` must be a non-empty list")
        aggregate = spec.get("aggregate", "geometric")
        if aggregate not in AGGREGATIONS:
            raise SpecError(f"aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
        return cls([make_term(t, cls.term_kinds) for t in terms], aggregate=aggregate)

    @property
    def weights(self) -> np.ndarray:
        return np.array([t.weight for t in self.terms], dtype=float)

    def _score_into(self, table: pd.DataFrame, good: list[Any], ok: Sequence[int]) -> np.ndarray:
        """Add each term's value (``_std`` when it has one) and ``_d`` desirability, then
        ``score``, to ``table`` (one row per input); ``good`` are the valid inputs, at rows
        ``ok``. Other rows keep NaN terms and score 0. Returns the desirability matrix.

        Shared by the molecule and the crystal objectives, so both score and lay out their
        tables the same way."""
        n = len(table)
        d = np.zeros((n, len(self.terms)))
        for k, term in enumerate(self.terms):
            raw = np.full(n, np.nan)
            if good:
                res = term.evaluate(good)
                raw[ok] = res.raw
                d[ok, k] = res.desirability
                if res.std is not None:
                    std = np.full(n, np.nan)
                    std[ok] = res.std
                    table[f"{term.name}_std"] = std
            table[term.name] = raw
            table[f"{term.name}_d"] = np.where(np.isin(np.arange(n), ok), d[:, k], np.nan)
        score = aggregate_scores(d, self.weights, self.aggregate)
        valid = set(ok)
        score[[i for i in range(n) if i not in valid]] = 0.0
        table["score"] = score
        return d

    def evaluate(self, smiles: Sequence[Any]) -> pd.DataFrame:
        """One row per input: canonical SMILES, each term's value and desirability, score.

        Invalid inputs keep their row with score 0 and an ``error``; nothing raises.
        """
        mols = [to_mol(s) for s in smiles]
        ok = [i for i, m in enumerate(mols) if m is not None]
        table = pd.DataFrame({"smiles": [canonical_smiles(m) for m in mols]})
        self._score_into(table, [mols[i] for i in ok], ok)
        table["error"] = [None if m is not None else "invalid molecule" for m in mols]
        return table

    def score(self, smiles: Sequence[Any]) -> np.ndarray:
        """Scores only (0 for invalid input)."""
        return self.evaluate(smiles)["score"].to_numpy()

    def desirability_columns(self) -> list[str]:
        return [f"{t.name}_d" for t in self.terms]


def load_objective(
    source: Objective | Mapping[str, Any] | str | Path, kind: type[Objective] = Objective
) -> Objective:
    """An :class:`Objective` (or ``kind``) from itself, a dict, or a YAML/JSON file path."""
    if isinstance(source, Objective):
        return source
    if isinstance(source, Mapping):
        return kind.from_spec(source)
    path = Path(source)
    if not path.exists():
        raise SpecError(f"objective file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except Exception as err:  # yaml and json raise their own error types
        raise SpecError(f"cannot parse {path}: {err}") from err
    spec = _resolve_paths(spec, path.parent)
    return kind.from_spec(spec)


def _resolve_paths(spec: Any, base: Path) -> Any:
    """Model paths in a spec file are relative to the file, so examples work from anywhere."""
    if isinstance(spec, dict) and isinstance(spec.get("terms"), list):
        for term in spec["terms"]:
            if isinstance(term, dict) and isinstance(term.get("path"), str):
                p = Path(term["path"]).expanduser()
                if not p.is_absolute() and not p.exists() and (base / p).exists():
                    term["path"] = str(base / p)
    return spec


# the language-model term lives in its own module; importing it registers ``clm_loglik``
from matfuse.generate import clm_term as _clm_term  # noqa: E402,F401
