"""Objectives for crystals: the molecular spec language, with terms that read crystals.

Why not a second spec language: the parsing of goals (windows, ramps, targets), the
p(Y in U | S) of property models and the aggregations (geometric, product, weighted sum,
Pareto) are those of :mod:`matfuse.generate.objectives`; only the terms differ. A crystal
term reads a :class:`CrystalRecord` (a relaxed structure and what the search learnt about
it) instead of a molecule. Spec (YAML/JSON, or the same dict)::

    aggregate: geometric
    terms:
      - property: e_above_hull     # eV/atom on the search's own hull; default: minimise
        max: 0.1                   #   on a ramp from 0.5 (worst) to 0 (best), or a window
      - property: model            # a saved matfuse PropertyModel on compositions or
        path: models/band_gap      #   structures: p(Y in [min, max] | S)
        min: 1.0
        max: 3.0
      - property: elements         # 1 if the constraints hold, else 0 (a veto)
        require: [Li]              #   elements that must be present
        exclude: [Co]              #   that must be absent
        within: Li-Mn-O            #   a chemical system the formula must lie in
      - property: spacegroup       # 1 if the space group is in the list (numbers or
        in: [225, 'R-3m']          #   symbols), or its crystal system matches; or a
        crystal_system: cubic      #   window / ramp on the number (min: 75)
      - property: hhi              # Herfindahl-Hirschman supply-risk index (pymatgen's
        kind: production           #   data, offline; 0-10000), default: minimise
      - property: magnetic_density # sum |m_i| / V in mu_B/Å^3 from CHGNet's magnetic
        goal: maximize             #   moments; default ramp 0 -> 0.1
                                   # every term also takes name: and weight:

Hand check: LiCoO2's HHI (production) is 2236; with ``goal: minimize`` and the default
scale [10000, 0] its desirability is 1 - 2236/10000 = 0.776.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Element, Structure

from matfuse.generate.objectives import (
    ModelTerm,
    Objective,
    SpecError,
    Term,
    TermKind,
    TermResult,
    TermSpec,
    load_objective,
    pareto_ranks,
)
from matfuse.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "CRYSTAL_TERMS",
    "CrystalObjective",
    "CrystalRecord",
    "ElementsTerm",
    "HHITerm",
    "HullTerm",
    "MagneticDensityTerm",
    "SpacegroupTerm",
    "load_crystal_objective",
    "magnetic_moment_density",
]

CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)


@dataclass
class CrystalRecord:
    """A relaxed crystal and what the search knows of it (``NaN``/``None``: unknown).

    Terms compute what is missing (space group from the structure, magnetic moments
    with CHGNet), so a record can be just a structure.
    """

    structure: Structure
    e_above_hull: float = float("nan")
    spacegroup_number: int | None = None
    magmoms: Sequence[float] | None = None


def _natural(t: TermSpec, goal: str) -> TermSpec:
    """The term's own default goal when the spec gave none (make_term defaults to maximize)."""
    given = any(k in t.spec for k in ("goal", "min", "max", "value"))
    return t if given else dataclasses.replace(t, goal=goal)


# -- terms -------------------------------------------------------------------------------
@dataclass
class _ValueTerm(Term):
    """A number per crystal turned into a desirability by the spec's goal."""

    modifier: Callable[[np.ndarray], np.ndarray] = field(default=lambda x: x)

    def values(self, records: list[CrystalRecord]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def evaluate(self, mols: list[Any]) -> TermResult:
        raw = np.asarray(self.values(mols), dtype=float)
        return TermResult(raw, np.nan_to_num(np.clip(self.modifier(raw), 0, 1), nan=0.0))


@dataclass
class HullTerm(_ValueTerm):
    """Energy above the hull (eV/atom) of the search's own potential: a proxy for DFT's."""

    def values(self, records: list[CrystalRecord]) -> np.ndarray:
        return np.array([r.e_above_hull for r in records], dtype=float)


@dataclass
class HHITerm(_ValueTerm):
    """Herfindahl-Hirschman index of the elements' production (or reserves), mass-weighted.

    pymatgen's ``HHIModel`` (Gaultois et al. 2013, data shipped with pymatgen): 0 for a
    perfectly spread supply, 10000 for one producing country; NaN for elements without data.
    """

    kind: str = "production"

    def values(self, records: list[CrystalRecord]) -> np.ndarray:
        model = _hhi_model()
        get = model.get_hhi_production if self.kind == "production" else model.get_hhi_reserve
        out = []
        for r in records:
            try:
                value = get(r.structure.composition)
            except Exception:  # an element without data raises in some pymatgen versions
                value = None
            out.append(float(value) if value is not None else float("nan"))
        return np.array(out, dtype=float)


@lru_cache(maxsize=1)
def _hhi_model() -> Any:
    from pymatgen.analysis.hhi import HHIModel

    return HHIModel()


def magnetic_moment_density(structure: Structure, magmoms: Sequence[float]) -> float:
    """sum_i |m_i| / V in Bohr magnetons per Å^3 (site moments in mu_B, volume in Å^3)."""
    return float(np.abs(np.asarray(magmoms, dtype=float)).sum() / structure.volume)


def _chgnet_magmoms(structures: Sequence[Structure]) -> list[Sequence[float] | None]:
    """CHGNet's predicted site magnetic moments (mu_B), ``None`` where it fails."""
    from matfuse.materials.energy import load_chgnet, torch_threads

    model = load_chgnet()
    out: list[Sequence[float] | None] = []
    for s in structures:
        try:
            with torch_threads(1):
                pred = model.predict_structure(s, task="em")
            out.append([float(m) for m in np.asarray(pred["m"]).reshape(-1)])
        except Exception as exc:
            logger.info("CHGNet magnetic moments failed: %s", exc)
            out.append(None)
    return out


@dataclass
class MagneticDensityTerm(_ValueTerm):
    """Magnetic moment density from the records' moments, else CHGNet's prediction."""

    def values(self, records: list[CrystalRecord]) -> np.ndarray:
        missing = [i for i, r in enumerate(records) if r.magmoms is None]
        if missing:
            predicted = _chgnet_magmoms([records[i].structure for i in missing])
            for i, m in zip(missing, predicted, strict=True):
                records[i].magmoms = m
        return np.array(
            [
                magnetic_moment_density(r.structure, r.magmoms)
                if r.magmoms is not None
                else float("nan")
                for r in records
            ]
        )


def _spacegroup_number(record: CrystalRecord) -> int | None:
    if record.spacegroup_number is None:
        from matfuse.materials.symmetry import get_symmetry

        try:
            record.spacegroup_number = int(get_symmetry(record.structure).number)
        except Exception:
            return None
    return record.spacegroup_number


def _crystal_system(number: int) -> str:
    """The crystal system of a space group number (International Tables ranges)."""
    bounds = (2, 15, 74, 142, 167, 194, 230)
    return next(cs for cs, top in zip(CRYSTAL_SYSTEMS, bounds, strict=True) if number <= top)


@dataclass
class SpacegroupTerm(_ValueTerm):
    """1 if the space group is allowed (``numbers`` or ``crystal_system``), else 0; without
    either, the spec's goal on the space group number."""

    numbers: frozenset[int] = frozenset()
    crystal_system: str | None = None

    def values(self, records: list[CrystalRecord]) -> np.ndarray:
        return np.array(
            [float(n) if (n := _spacegroup_number(r)) is not None else np.nan for r in records]
        )

    def evaluate(self, mols: list[Any]) -> TermResult:
        if not self.numbers and self.crystal_system is None:
            return super().evaluate(mols)
        raw = self.values(mols)
        ok = [
            math.isfinite(n)
            and (not self.numbers or int(n) in self.numbers)
            and (self.crystal_system is None or _crystal_system(int(n)) == self.crystal_system)
            for n in raw
        ]
        return TermResult(raw, np.array(ok, dtype=float))


@dataclass
class ElementsTerm(Term):
    """1 if the formula has every ``require``-d element, none ``exclude``-d, and lies in the
    chemical system ``within`` (when given); else 0. The raw value is the same 0/1."""

    require: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    within: frozenset[str] | None = None

    def evaluate(self, mols: list[Any]) -> TermResult:
        hits = []
        for r in mols:
            present = {el.symbol for el in r.structure.composition.elements}
            ok = self.require <= present and not (self.exclude & present)
            hits.append(ok and (self.within is None or present <= self.within))
        values = np.array(hits, dtype=float)
        return TermResult(values, values)


@dataclass
class CrystalModelTerm(Term):
    """A target of a saved PropertyModel on compositions (formulas) or structures; the
    molecular :class:`~matfuse.generate.objectives.ModelTerm` does the scoring."""

    model_term: ModelTerm | None = None

    def evaluate(self, mols: list[Any]) -> TermResult:
        assert self.model_term is not None  # set by the factory
        if self.model_term._model.input_type == "composition":
            inputs: list[Any] = [r.structure.composition.formula for r in mols]
        else:
            inputs = [r.structure for r in mols]
        return self.model_term.evaluate_inputs(inputs)


# -- spec parsing --------------------------------------------------------------------------
def _elements(term: str, key: str, value: Any) -> frozenset[str]:
    """Element symbols from a list or an ``A-B-C`` chemical system string."""
    if isinstance(value, str):
        items: Iterable[Any] = value.replace(",", "-").split("-")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise SpecError(f"term {term!r}: {key} must be a list of elements or 'A-B-C'")
    out = set()
    for item in items:
        symbol = str(item).strip()
        if not Element.is_valid_symbol(symbol):
            raise SpecError(f"term {term!r}: {key} has an unknown element {symbol!r}")
        out.add(symbol)
    return frozenset(out)


def _hull_term(t: TermSpec) -> Term:
    t = _natural(t, "minimize")
    return HullTerm(t.name, t.weight, modifier=t.modifier((0.0, 0.5)))


def _hhi_term(t: TermSpec) -> Term:
    kind = t.spec.get("kind", "production")
    if kind not in ("production", "reserve"):
        raise SpecError(f"term {t.name!r}: kind must be 'production' or 'reserve'")
    t = _natural(t, "minimize")
    return HHITerm(t.name, t.weight, modifier=t.modifier((0.0, 10000.0)), kind=kind)


def _magnetic_term(t: TermSpec) -> Term:
    return MagneticDensityTerm(t.name, t.weight, modifier=t.modifier((0.0, 0.1)))


def _spacegroup_term(t: TermSpec) -> Term:
    from pymatgen.symmetry.groups import SpaceGroup

    numbers: set[int] = set()
    allowed = t.spec.get("in", [])
    if not isinstance(allowed, list | tuple):
        raise SpecError(f"term {t.name!r}: `in` must be a list of space groups")
    for item in allowed:
        if isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= 230:
            numbers.add(item)
            continue
        try:
            numbers.add(int(SpaceGroup(str(item)).int_number))
        except Exception:
            raise SpecError(f"term {t.name!r}: unknown space group {item!r}") from None
    system = t.spec.get("crystal_system")
    if system is not None and system not in CRYSTAL_SYSTEMS:
        raise SpecError(f"term {t.name!r}: crystal_system must be one of {CRYSTAL_SYSTEMS}")
    constrained = bool(numbers) or system is not None
    if not constrained and not any(k in t.spec for k in ("min", "max", "value", "scale")):
        raise SpecError(f"term {t.name!r}: give `in`, `crystal_system`, or a window on the number")
    modifier = t.modifier((1.0, 230.0))
    return SpacegroupTerm(t.name, t.weight, modifier, frozenset(numbers), system)


def _elements_term(t: TermSpec) -> Term:
    require = _elements(t.name, "require", t.spec.get("require", []))
    exclude = _elements(t.name, "exclude", t.spec.get("exclude", []))
    within = t.spec.get("within")
    system = _elements(t.name, "within", within) if within is not None else None
    if not require and not exclude and system is None:
        raise SpecError(f"term {t.name!r}: give require, exclude and/or within")
    if require & exclude:
        raise SpecError(f"term {t.name!r}: {sorted(require & exclude)} both required and excluded")
    return ElementsTerm(t.name, t.weight, require, exclude, system)


def _model_term(t: TermSpec) -> Term:
    from matfuse.generate.objectives import TERMS

    inner = TERMS.get("model").factory(t)  # the molecular spec parsing and model loading
    assert isinstance(inner, ModelTerm)
    kind = inner._model.input_type
    if kind not in ("composition", "structure"):
        raise SpecError(
            f"term {t.name!r}: the model at {inner.path} reads {kind}s; a crystal objective "
            "needs a composition or structure model"
        )
    return CrystalModelTerm(inner.name, inner.weight, model_term=inner)


#: Term kinds of a crystal objective (``property:``).
CRYSTAL_TERMS: Registry[TermKind] = Registry("crystal term")
for _name, _factory, _keys, _description in (
    ("e_above_hull", _hull_term, (), "energy above the search's hull, eV/atom (minimise)"),
    ("model", _model_term, ("path", "output"), "p(Y in [min, max]) from a saved PropertyModel"),
    ("elements", _elements_term, ("require", "exclude", "within"), "element constraints (0/1)"),
    ("spacegroup", _spacegroup_term, ("in", "crystal_system"), "allowed space groups (0/1)"),
    ("hhi", _hhi_term, ("kind",), "Herfindahl-Hirschman supply-risk index (minimise)"),
    ("magnetic_density", _magnetic_term, (), "sum |m| / V from CHGNet magmoms, mu_B/Å^3"),
):
    CRYSTAL_TERMS.add(_name, TermKind(_factory, frozenset(_keys)), description=_description)


# -- the objective ---------------------------------------------------------------------------
@dataclass
class CrystalObjective(Objective):
    """Crystal terms plus an aggregation; scores :class:`CrystalRecord` lists."""

    term_kinds = CRYSTAL_TERMS

    def evaluate(self, records: Sequence[Any]) -> pd.DataFrame:
        """One row per record: each term's value (and ``_d`` desirability), score, and
        ``pareto_rank`` (1 = front) when aggregated by Pareto. Records without a structure
        score 0 with their terms NaN."""
        records = list(records)
        n = len(records)
        ok = [i for i, r in enumerate(records) if isinstance(r, CrystalRecord)]
        table = pd.DataFrame(index=range(n))
        d = self._score_into(table, [records[i] for i in ok], ok)
        if self.aggregate == "pareto":
            table["pareto_rank"] = pareto_ranks(d)
        return table


def load_crystal_objective(source: Objective | Mapping[str, Any] | str) -> CrystalObjective:
    """A :class:`CrystalObjective` from itself, a dict, a YAML/JSON file, or inline JSON."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        import json

        try:
            source = json.loads(source)
        except json.JSONDecodeError as err:
            raise SpecError(f"objective JSON cannot be parsed: {err}") from None
    objective = load_objective(source, CrystalObjective)
    if not isinstance(objective, CrystalObjective):
        raise SpecError("a crystal search needs a crystal objective (CrystalObjective)")
    return objective
