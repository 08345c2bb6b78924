"""What the UI needs to know about each input kind, read from the library, not hand-listed.

Molecules, compositions and crystal structures share one workflow; what differs is which
encoders can read them (``matfuse.inputs.compatible_modalities``), which splitters make
sense (the molecule and the materials splitter factories), the default encoder set and the
words the UI uses. Keeping that here means a splitter or encoder modality added to the
library shows up in the dropdowns without touching the tabs.

The UI-only traits of a kind (its words and examples, whether it has a structure view,
how its rows are pictured, whether it can seed generation, ...) are one :class:`KindView`
per kind; the tabs ask :func:`kind_view` instead of comparing kind names.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_KIND = "molecule"  # what the UI shows before any data is loaded


@dataclass(frozen=True)
class KindView:
    """How the web UI presents one input kind: its words, examples and which views apply.

    The tabs never test ``kind == "structure"``; they ask the kind's view, so that a kind
    added later (a polymer, a reaction) only needs one :func:`register_kind_view` call, and
    a kind without one still works with the generic view of :func:`kind_view`.
    """

    name: str
    #: the input-kind selector's label
    choice_label: str
    #: what the input column holds, for "choose the column that holds …"
    input_what: str
    #: the input column in "…, SMILES column `smiles`"
    column_label: str
    #: the Predict tab's text box: label and placeholder
    paste_label: str
    paste_example: str
    #: "Paste at least …" when nothing was given
    paste_one: str
    #: the pasted text is one input as a whole (a CIF), not one input per line
    whole_paste: bool = False
    #: how rows are pictured in galleries: "depiction" (2-D drawing from SMILES), "cell"
    #: (a rendering of the crystal cell) or None (shown as a table)
    picture: str | None = None
    #: the Data tab's structure view (formula, space group, lattice, 3-D model) applies
    structure_view: bool = False
    #: inputs are long multi-line texts: tables show a one-line headline and the formula
    long_text: bool = False
    #: table cells that look like file paths are refused (the reader would open them);
    #: values are passed on as they are (text or already-parsed objects), not as ``str``
    reads_files: bool = False
    #: the latent map's columns: what a point is and its readable identity
    map_item: str = "material"
    map_key: str = "formula"
    #: the Generate tab designs inputs of this kind: a model of it can score candidates and
    #: the loaded rows can seed the search ("Start from")
    generation: bool = False
    #: said when a loaded table has no numeric target column
    no_target_hint: str = ""

    @property
    def has_elements(self) -> bool:
        """Rows have elements to hold out: the library offers the element split for them."""
        try:
            return "element" in _library_splitters(self.name)
        except (KeyError, ValueError, TypeError):
            return False

    @property
    def noun(self) -> str:
        return _library_nouns(self.name)[0]

    @property
    def plural(self) -> str:
        return _library_nouns(self.name)[1]


def _library_nouns(name: str) -> tuple[str, str]:
    """The library kind's singular and plural (``input``/``inputs`` for unknown kinds)."""
    from matfuse.inputs import KINDS as LIBRARY_KINDS

    try:
        kind = LIBRARY_KINDS.get(name)
    except (KeyError, ValueError):
        return "input", "inputs"
    return str(kind.noun), str(kind.plural)


_VIEWS: dict[str, KindView] = {}


def register_kind_view(view: KindView) -> KindView:
    """Add (or replace) the UI view of a kind; the kind selector lists it."""
    _VIEWS[view.name] = view
    return view


def kind_view(kind: str | None) -> KindView:
    """The registered view of ``kind``, or a generic one built from the library's kind."""
    name = kind or DEFAULT_KIND
    view = _VIEWS.get(name)
    if view is not None:
        return view
    one, many = _library_nouns(name)
    return KindView(
        name=name,
        choice_label=many,
        input_what=f"{one} text",
        column_label=one,
        paste_label=f"{many.capitalize()}, one per line (optionally followed by a name)",
        paste_example="",
        paste_one=f"one {one}",
        map_item="item",
        map_key="key",
    )


register_kind_view(
    KindView(
        name="molecule",
        choice_label="molecules (SMILES)",
        input_what="SMILES",
        column_label="SMILES",
        paste_label="SMILES, one per line (optionally followed by a name)",
        paste_example=(
            "CC(=O)Nc1ccc(O)cc1 paracetamol\nCn1cnc2c1c(=O)n(C)c(=O)n2C caffeine\nC1CC( broken"
        ),
        paste_one="one SMILES (one per line)",
        picture="depiction",
        map_item="molecule",
        map_key="smiles",
        generation=True,
    )
)
register_kind_view(
    KindView(
        name="composition",
        choice_label="compositions (formulas)",
        input_what="chemical formulas",
        column_label="formula",
        paste_label="Formulas, one per line (optionally followed by a name)",
        paste_example="Fe2O3 hematite\nNaCl rocksalt\nLiFePO4\nXx2O broken",
        paste_one="one composition",
    )
)
register_kind_view(
    KindView(
        name="structure",
        choice_label="crystal structures (CIF / POSCAR)",
        input_what="CIF or POSCAR text",
        column_label="structure",
        paste_label="One structure: paste a whole CIF or POSCAR",
        paste_example=(
            "Paste one CIF or POSCAR here, or upload .cif/.vasp files or a .zip of them."
        ),
        paste_one="one structure",
        whole_paste=True,
        picture="cell",
        structure_view=True,
        long_text=True,
        reads_files=True,
        no_target_hint=(
            " For a zip of structures, add a `labels.csv` with a column of file names "
            "and one of values."
        ),
    )
)

#: The kinds with a UI view, in the selector's order.
KINDS: tuple[str, ...] = tuple(_VIEWS)
#: The input-kind selector: "auto" lets the library detect the kind from column names/content.
KIND_CHOICES: list[tuple[str, str]] = [("auto-detect", "auto")] + [
    (v.choice_label, v.name) for v in _VIEWS.values()
]
#: What the input column holds, per kind (kept for older callers; prefer ``kind_view``).
INPUT_WHAT = {name: v.input_what for name, v in _VIEWS.items()}


def chosen_kind(value: str | None) -> str | None:
    """The kind a selector value names; ``None`` for "auto" (let the library detect it)."""
    return None if value in (None, "", "auto") else str(value)


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


def noun(kind: str | None, count: int = 2) -> str:
    """``molecule``/``molecules`` and so on; unknown kinds read as "inputs"."""
    if not kind:
        return "input" if count == 1 else "inputs"
    view = kind_view(kind)
    return view.noun if count == 1 else view.plural


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
    """The input kind of a validated table (:data:`DEFAULT_KIND` for none)."""
    if table is None:
        return DEFAULT_KIND
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
