"""Parse chemical formulas into pymatgen compositions without ever dropping a row.

pymatgen's ``Composition`` is lenient in ways that hide data errors: an unknown symbol such
as ``Xx`` becomes a dummy species, and an element with a zero (or below 1e-8) amount is
silently removed, so ``"Fe0O"`` reads as ``"O"``. :func:`parse_compositions` turns those
cases into per-row errors, like :func:`matfuse.chem.standardize.parse_smiles` does for
molecules.

>>> p = parse_compositions(["Fe2O3", "Xx2O", "Fe0O", ""])
>>> p.formulas[0], p.errors[1], p.errors[2], p.errors[3]
('Fe2O3', 'unknown element(s): Xx', 'non-positive amount for element(s): Fe', 'empty formula')
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.core.periodic_table import DummySpecies

from matfuse.rows import RowAligned, first_line, is_missing

#: Formulas longer than this are refused before parsing to bound the cost of a bad row.
MAX_FORMULA_LENGTH = 1000
#: Symbols pymatgen reads as hydrogen isotopes; they are not missing elements.
_HYDROGEN_ALIASES = {"D": "H", "T": "H"}
# pymatgen's own tokeniser reads an element symbol as a capital letter plus lower-case ones
_SYMBOL = re.compile(r"[A-Z][a-z]*")


@dataclass
class ParsedCompositions(RowAligned):
    """Row-aligned result of parsing a batch of formulas.

    ``compositions[i]`` and ``formulas[i]`` (pymatgen's reduced formula, the key used for
    duplicates and caching) are ``None`` exactly when ``errors[i]`` is set.
    """

    row_fields: ClassVar[tuple[str, ...]] = ("inputs", "compositions", "formulas", "errors")

    inputs: list[Any]
    compositions: list[Composition | None]
    formulas: list[str | None]
    errors: list[str | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def objects(self) -> list[Composition | None]:
        """The parsed objects (the name every parsed batch uses)."""
        return self.compositions

    @property
    def keys(self) -> list[str | None]:
        """The reduced formula: equal for Fe2O3 and Fe4O6, the key for dedupe and leakage."""
        return self.formulas


def _from_text(text: str) -> tuple[Composition | None, str | None]:
    text = text.strip()
    if len(text) > MAX_FORMULA_LENGTH:
        return None, f"formula too long ({len(text)} > {MAX_FORMULA_LENGTH} characters)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(text)
    except ValueError as exc:
        reason = first_line(exc)
        if "negative" in reason.lower():
            return None, "non-positive amount: amounts cannot be negative"
        return None, f"unparsable formula: {reason}"
    except Exception as exc:  # OverflowError on 1e400 and friends: a bad row, not a crash
        return None, f"unparsable formula: {first_line(exc)}"
    written = {_HYDROGEN_ALIASES.get(s, s) for s in _SYMBOL.findall(text)}
    kept = {str(getattr(el, "symbol", el)) for el in comp}
    dropped = sorted(
        s for s in written - kept if s in Element.__members__
    )  # unknown symbols are reported below as unknown elements, not as zero amounts
    if dropped:
        return None, f"non-positive amount for element(s): {', '.join(dropped)}"
    return comp, None


def _check(comp: Composition) -> tuple[Composition | None, str | None]:
    unknown = sorted({str(getattr(sp, "symbol", sp)) for sp in comp if not _is_element_like(sp)})
    if unknown:
        return None, f"unknown element(s): {', '.join(unknown)}"
    comp = comp.element_composition  # oxidation states are not part of the formula
    if len(comp) == 0 or comp.num_atoms <= 0:
        return None, "empty formula"
    amounts = list(comp.values())
    if any(not math.isfinite(a) for a in amounts):
        return None, "non-finite amount"
    if any(a <= 0 for a in amounts):
        return None, "non-positive amount: amounts must be > 0"
    return comp, None


def _is_element_like(sp: Any) -> bool:
    """Elements and species with an oxidation state (``Fe3+``), unlike dummy species (``X``)."""
    return isinstance(sp, Element | Species) and not isinstance(sp, DummySpecies)


def to_composition(value: Any) -> tuple[Composition | None, str | None]:
    """Parse one formula, composition or structure; return the composition or the reason.

    Structures (and anything with a ``composition`` attribute) give their composition, so
    that composition encoders accept crystal structures too.
    """
    if is_missing(value):
        return None, "empty formula"
    if isinstance(value, Composition):
        return _check(value)
    if isinstance(value, Structure) or hasattr(value, "composition"):
        try:
            comp = value.composition
        except Exception as exc:
            return None, f"no composition: {first_line(exc)}"
        if isinstance(comp, Composition):
            return _check(comp)
        return None, f"no composition on {type(value).__name__}"
    if isinstance(value, dict):
        try:
            return _check(Composition(value))
        except Exception as exc:
            return None, f"unparsable composition: {first_line(exc)}"
    if not isinstance(value, str):
        return None, f"not a formula ({type(value).__name__})"
    comp, err = _from_text(value)
    if comp is None:
        return None, err
    return _check(comp)


def parse_compositions(
    items: Iterable[Any], *, allowed_elements: Iterable[str] | None = None
) -> ParsedCompositions:
    """Parse formulas (or compositions, or structures) keeping every row.

    ``allowed_elements`` restricts the chemistry; a row with another element gets an error
    naming it, as molecules do in :func:`matfuse.chem.standardize.parse_smiles`.
    """
    if isinstance(items, ParsedCompositions):
        return items
    if isinstance(items, str):
        items = [items]  # a lone formula, not a sequence of characters
    inputs = list(items)
    allowed = frozenset(allowed_elements) if allowed_elements is not None else None
    comps: list[Composition | None] = []
    formulas: list[str | None] = []
    errors: list[str | None] = []
    # pymatgen warns per element with missing data (e.g. no electronegativity for Og)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in inputs:
            comp, err = to_composition(item)
            if comp is not None and allowed is not None:
                bad = sorted({el.symbol for el in comp} - allowed)
                if bad:
                    comp, err = None, f"disallowed element(s): {', '.join(bad)}"
            comps.append(comp)
            formulas.append(comp.reduced_formula if comp is not None else None)
            errors.append(err)
    return ParsedCompositions(inputs=inputs, compositions=comps, formulas=formulas, errors=errors)


def composition_key(comp: Composition) -> str:
    """Key that is equal for compositions with the same element fractions (Fe2O3 == Fe4O6).

    Composition features depend on fractions only, so this is the cache key of the
    composition encoder; rounding to 1e-8 absorbs float noise in fractional formulas.
    """
    frac = comp.fractional_composition
    return " ".join(f"{el.symbol}{frac[el]:.8f}" for el in sorted(frac, key=lambda e: e.Z))
