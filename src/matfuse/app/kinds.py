"""What the UI needs to know about each input kind, read from the library, not hand-listed.

Molecules, compositions and crystal structures share one workflow; what differs is which
encoders can read them (``matfuse.inputs.compatible_modalities``), which splitters make
sense (the molecule and the materials splitter factories), the default encoder set and the
words the UI uses. Keeping that here means a splitter or encoder modality added to the
library shows up in the dropdowns without touching the tabs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("molecule", "composition", "structure")
#: The input-kind selector: "auto" lets the library detect the kind from column names/content.
KIND_CHOICES: list[tuple[str, str]] = [
    ("auto-detect", "auto"),
    ("molecules (SMILES)", "molecule"),
    ("compositions (formulas)", "composition"),
    ("crystal structures (CIF / POSCAR)", "structure"),
]
_NOUNS = {
    "molecule": ("molecule", "molecules"),
    "composition": ("composition", "compositions"),
    "structure": ("structure", "structures"),
}
#: What the input column holds, for messages such as "choose the column that holds …".
INPUT_WHAT = {
    "molecule": "SMILES",
    "composition": "chemical formulas",
    "structure": "CIF or POSCAR text",
}
#: Friendlier dropdown labels for splitter names; a name without one is shown as it is, so
#: a splitter registered later still appears.
SPLIT_LABELS: dict[str, str] = {
    "predefined": "as provided",
    "random": "random",
    "scaffold": "scaffold (Bemis–Murcko groups)",
    "cluster": "cluster (Butina on Morgan fingerprints)",
    "ood": "OOD (highest target values held out)",
    "spacegroup": "space group (no test space group in train)",
    "element": "element held out (no test element in train)",
    "chemsys": "chemical system (no test system in train)",
    "kfold": "k-fold (first fold as the test set)",
}
#: Splitters that need structures (not formulas) to find their groups.

def noun(kind: str | None, count: int = 2) -> str:
    """``molecule``/``molecules`` and so on; unknown kinds read as "inputs"."""
    one, many = _NOUNS.get(kind or "", ("input", "inputs"))
    return one if count == 1 else many


def split_label(name: str) -> str:
    return SPLIT_LABELS.get(name, name)


def splitter_names(kind: str) -> list[str]:
    """Splitter names the library accepts for ``kind``: "predefined" and "random" first."""
    names = _library_splitters(kind)
    first = [n for n in ("predefined", "random") if n in names]
    return first + [n for n in names if n not in first]


def _library_splitters(kind: str) -> list[str]:
    from matfuse.evaluate import list_splitters

    return list(list_splitters(kind))


def split_choices_for(kind: str, has_provided: bool) -> list[tuple[str, str]]:
    """(label, name) dropdown choices; "as provided" only when the data came pre-split."""
    return [(split_label(n), n) for n in splitter_names(kind) if has_provided or n != "predefined"]


def compatible_modalities(kind: str) -> tuple[str, ...]:
    from matfuse.inputs import compatible_modalities as modalities

    return tuple(modalities(kind))


def default_encoders_for(kind: str) -> list[str]:
    from matfuse.inputs import default_encoders

    return list(default_encoders(kind))


def table_kind(table: Any) -> str:
    """The input kind of a validated table (``molecule`` for none)."""
    if table is None:
        return "molecule"
    return str(table.input_type)


def input_column(table: Any) -> str:
    """The column that holds the inputs (both table types have ``input_col``)."""
    return str(getattr(table, "input_col", None) or getattr(table, "smiles_col", ""))


def display_keys(parsed: Any) -> list[str | None]:
    """One readable identity per row: canonical SMILES for molecules, formulas otherwise."""
    canonical = getattr(parsed, "canonical", None)
    if canonical is not None:
        return list(canonical)
    return list(parsed.formulas)


def element_counts(parsed: Any) -> Counter[str]:
    """In how many usable rows each element occurs (compositions or structures)."""
    counts: Counter[str] = Counter()
    for obj in getattr(parsed, "objects", []):
        if obj is None:
            continue
        comp = getattr(obj, "composition", obj)
        try:
            counts.update({el.symbol for el in comp.elements})
        except AttributeError:  # not a material (defensive: a molecule record has no elements)
            continue
    return counts


def element_choices(
    parsed: Any, test_share: float = 0.2, limit: int = 60
) -> tuple[list[tuple[str, str]], str | None]:
    """Elements for the hold-out split, most frequent first, and a sensible default.

    The default is the element whose share of rows is closest to ``test_share``, so the
    first "element held out" split a user tries leaves most of the data for training
    (the splitter's own default, oxygen, would put half of an oxide set in test).
    """
    counts = element_counts(parsed)
    n = int(sum(bool(o is not None) for o in getattr(parsed, "objects", [])))
    if not counts or n == 0:
        return [], None
    ranked = counts.most_common(limit)
    choices = [(f"{el} ({c:,} of {n:,} rows)", el) for el, c in ranked]
    usable = [(el, c) for el, c in ranked if c < n]  # an element in every row leaves no train
    pool = usable or ranked
    default = min(pool, key=lambda ec: (abs(ec[1] / n - test_share), ec[0]))[0]
    return choices, default


def modality_groups(groups: dict[str, Sequence[tuple[str, str]]], kind: str) -> dict[str, bool]:
    """Which encoder checkbox groups (by modality) are shown for ``kind``."""
    allowed = set(compatible_modalities(kind))
    return {modality: modality in allowed for modality in groups}
