"""The registry of input kinds, and everything that depends only on "which kind is this".

An input kind (molecule, composition, structure; a user may add polymers or reactions) is
one class in one module that declares how to find its column in a table (names, then
content), how to parse values into a row-aligned batch (:mod:`matfuse.inputs.batch`), its
canonical key, its default encoders, the splitters that make sense for it and the kinds it
can be converted to (a structure has a composition). Nothing outside this package asks
"is this a molecule?": code asks the kind.

Adding a kind::

    class PolymerKind(InputKind):
        name = "polymer"
        ...
    KINDS.add("polymer", PolymerKind(), description="polymer repeat units")

and ``matfuse train --input-type polymer`` works, with the kind's default encoders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from matfuse.inputs.batch import Batch, MultiBatch
from matfuse.registry import Registry
from matfuse.rows import is_missing

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_KIND",
    "KINDS",
    "InputKind",
    "NoInputColumnError",
    "as_batch",
    "check_kind",
    "convertible",
    "detect_columns",
    "display_keys",
    "get_kind",
    "kind_of",
    "similarity_inputs",
]

#: The kind assumed for raw strings when nothing else is said (the library's first use).
DEFAULT_KIND = "molecule"
#: Share of a column sample that must read as a kind for content detection to pick it.
CONTENT_THRESHOLD = 0.6


class NoInputColumnError(ValueError):
    """No column of a table holds inputs of the wanted kind(s); carries the columns seen."""

    def __init__(self, wanted: str, columns: Sequence[Any]) -> None:
        self.wanted = wanted
        self.columns = list(columns)
        super().__init__(
            f"could not find a {wanted} column (name it explicitly). Columns: {self.columns}"
        )


class InputKind:
    """What one kind of input declares. Subclasses set the class attributes and ``parse``.

    ``name_priority`` orders detection by column name (lower first: a ``smiles`` column
    wins over a ``formula`` column); ``content_priority`` orders detection by content,
    where the order matters because short SMILES such as ``CCO`` also read as formulas.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: column names taken as this kind's column, in order of preference
    column_names: ClassVar[tuple[str, ...]] = ()
    #: substrings that mark a column name as this kind's (e.g. "smiles" in "canonical_smiles")
    name_hints: ClassVar[tuple[str, ...]] = ()
    name_priority: ClassVar[int] = 50
    content_priority: ClassVar[int] = 50
    #: encoder modalities that read this kind directly
    modalities: ClassVar[tuple[str, ...]] = ()
    default_encoders: ClassVar[tuple[str, ...]] = ()
    #: per-model parameters used when the user gives none, ``{"xgboost": {...}}``
    default_model_params: ClassVar[dict[str, dict[str, Any]]] = {}
    #: parse options this kind understands (others given to ``parse`` are ignored)
    options: ClassVar[tuple[str, ...]] = ()
    #: name of the output column that shows each row's canonical key
    key_label: ClassVar[str] = "key"
    #: the batch class :meth:`parse` returns (how a batch is recognised as this kind's)
    batch_type: ClassVar[type] = object
    #: the singular/plural nouns used in messages
    noun: ClassVar[str] = "input"
    plural: ClassVar[str] = "inputs"

    def parse(self, values: Sequence[Any], **options: Any) -> Any:
        """Parse raw values into this kind's batch, one row per value (never drops a row)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def accepts_object(self, value: Any) -> bool:
        """Whether a non-text value is already one of this kind's objects."""
        return False

    def recognises_text(self, text: str) -> bool:
        """Whether raw text unmistakably belongs to this kind (e.g. CIF text), cheaply.

        Used to type raw strings without a declared kind; kinds whose text can be mistaken
        for another's (a formula can be a SMILES) leave it ``False``.
        """
        return False

    def content_score(self, values: Sequence[Any]) -> float:
        """Share of a sample of a column's values that reads as this kind (0..1)."""
        sample = [v for v in values if not is_missing(v)][:30]
        if not sample:
            return 0.0
        return sum(self.reads_as(v) for v in sample) / len(sample)

    def reads_as(self, value: Any) -> bool:
        """Whether one value parses as this kind (used by :meth:`content_score`)."""
        batch = self.parse([value])
        return bool(batch.valid[0])

    def excludes(self) -> tuple[str, ...]:
        """Kinds whose content, when present in a column, rules this kind out."""
        return ()

    #: conversions to other kinds: target kind name -> function(batch) -> batch
    conversions: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    def convert(self, batch: Any, to: str) -> Any:
        try:
            fn = self.conversions[to]
        except KeyError:
            raise TypeError(f"{self.plural} cannot be read as {get_kind(to).plural}") from None
        return fn(batch)

    def similarity_inputs(self, batch: Any) -> list[Any] | None:
        """Inputs for the report's nearest-training-neighbour similarity (``None``: none)."""
        return None

    def display_keys(self, batch: Any) -> list[str | None]:
        """What the ``key_label`` output column shows per row."""
        return list(batch.keys)

    def name_matches(self, column: Any) -> int | None:
        """Rank of ``column`` among this kind's names (lower is better), ``None`` if no match."""
        low = str(column).strip().lower()
        if low in self.column_names:
            return self.column_names.index(low)
        if any(h in low for h in self.name_hints):
            return len(self.column_names)
        return None

    def parse_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k in self.options}


KINDS: Registry[InputKind] = Registry("input type", loader="matfuse.inputs.builtin_kinds")


def get_kind(name: str) -> InputKind:
    """The registered kind called ``name`` (or one of its aliases)."""
    return KINDS.get(name)


def check_kind(kind: str | None, allow_auto: bool = True) -> str | None:
    """Normalise an ``--input-type`` value: ``None``/``auto`` mean "detect" (``None``).

    Several kinds joined with ``+`` (``composition+structure``) name a multimodal table.
    """
    if kind is None or (allow_auto and str(kind).strip().lower() == "auto"):
        return None
    names = [KINDS.resolve(part) for part in str(kind).split("+") if part.strip()]
    if not names:
        raise ValueError(f"empty input type {kind!r}")
    return "+".join(names)


def kind_names(kind: str) -> list[str]:
    """The kinds of a (possibly ``+``-joined) input type."""
    return (check_kind(kind, allow_auto=False) or DEFAULT_KIND).split("+")


def kind_of(batch: Any) -> str:
    """The kind of a parsed batch (``a+b`` for a :class:`MultiBatch`)."""
    if isinstance(batch, MultiBatch):
        return "+".join(batch.kinds)
    for entry in KINDS.entries():
        if isinstance(batch, entry.obj.batch_type):
            return entry.name
    raise TypeError(f"{type(batch).__name__} is not a parsed batch of any registered kind")


def similarity_inputs(batch: Any) -> list[Any] | None:
    """What the report measures train/test similarity on, for any batch (or ``None``)."""
    parts = batch.parts.items() if isinstance(batch, MultiBatch) else [(kind_of(batch), batch)]
    for name, part in parts:
        found = get_kind(name).similarity_inputs(part)
        if found is not None:
            return found
    return None


def display_keys(batch: Any) -> tuple[str, list[str | None]]:
    """The output column name and per-row canonical key shown beside predictions."""
    if isinstance(batch, MultiBatch):
        name, part = next(iter(batch.parts.items()))
    else:
        name, part = kind_of(batch), batch
    kind = get_kind(name)
    return kind.key_label, kind.display_keys(part)


def convertible(source: str, target: str) -> bool:
    """Whether a batch of kind ``source`` can be read by something that needs ``target``."""
    return source == target or target in get_kind(source).conversions


def _as_list(X: Any) -> list[Any]:
    if isinstance(X, str) or not hasattr(X, "__iter__"):
        return [X]  # a lone value is one row, not a sequence of characters
    if type(X).__name__ in ("Structure", "IStructure", "Atoms", "Composition", "Mol"):
        return [X]
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return list(X[:, 0])
    if isinstance(X, pd.DataFrame):
        return list(X.iloc[:, 0])
    if hasattr(X, "tolist"):
        return list(X.tolist())
    return list(X)


def _kind_of_values(values: list[Any]) -> str:
    """The kind of raw values: by their objects, structure text by its format, else default.

    Plain strings are taken as :data:`DEFAULT_KIND` rather than guessed: a formula such as
    ``CO`` is also a SMILES, so only a caller can say which it means.
    """
    first = next((v for v in values if not is_missing(v)), None)
    if first is None:
        return DEFAULT_KIND
    for entry in sorted(KINDS.entries(), key=lambda e: e.obj.content_priority):
        kind = entry.obj
        if isinstance(first, str):
            if kind.recognises_text(first):
                return entry.name
        elif kind.accepts_object(first):
            return entry.name
    return DEFAULT_KIND


def as_batch(X: Any, kind: str | None = None, **options: Any) -> Any:
    """``X`` as a parsed batch of ``kind``: parsed if raw, converted if of another kind.

    ``kind=None`` keeps a batch as it is and parses raw values as the kind their objects
    belong to (strings as :data:`DEFAULT_KIND`). A :class:`MultiBatch` gives the part of
    ``kind``, or the first part that converts to it.
    """
    if isinstance(X, MultiBatch):
        if kind is None:
            return X
        if kind in X.parts:
            return X.parts[kind]
        for name, part in X.parts.items():
            if convertible(name, kind):
                return get_kind(name).convert(part, kind)
        raise TypeError(f"none of {X.kinds} can be read as {get_kind(kind).plural}")
    if isinstance(X, Batch) and not isinstance(X, str | pd.Series | list | tuple | np.ndarray):
        source = kind_of(X)
        if kind is None or source == kind:
            return X
        return get_kind(source).convert(X, kind)
    values = _as_list(X)
    target = get_kind(kind or _kind_of_values(values))
    return target.parse(values, **target.parse_options(options))


def detect_columns(
    frame: pd.DataFrame, kind: str | None = None, columns: Sequence[str] | None = None
) -> dict[str, str]:
    """Which column holds which kind: ``{column: kind}``, in the order they were chosen.

    * ``columns`` given: each is assigned ``kind`` (one kind per column when ``kind`` is
      ``a+b``) or detected by its name, then its content;
    * ``kind`` given, no columns: each kind's column is found by name, then content;
    * nothing given: names decide first (by each kind's ``name_priority``), then content
      (by ``content_priority``). Raises :class:`NoInputColumnError` when nothing fits.
    """
    for col in columns or []:
        if col not in frame.columns:
            raise KeyError(f"input column {col!r} not found; columns: {list(frame.columns)}")
    wanted = kind_names(kind) if kind is not None and check_kind(kind) else None
    if columns:
        if wanted is not None and len(wanted) not in (1, len(columns)):
            raise ValueError(f"{len(columns)} input columns for input type {kind!r}")
        out: dict[str, str] = {}
        for i, col in enumerate(columns):
            if wanted is not None:
                out[col] = wanted[i] if len(wanted) == len(columns) else wanted[0]
            else:
                out[col] = _kind_of_column(frame, col)
        return out
    if wanted is not None:
        return {_column_for(frame, k): k for k in wanted}
    by_name = _best_by_name(frame, [e.obj for e in KINDS.entries()])
    if by_name is not None:
        return {by_name[1]: by_name[0]}
    for k in sorted((e.obj for e in KINDS.entries()), key=lambda k: k.content_priority):
        found = _column_by_content(frame, k)
        if found is not None:
            return {found: k.name}
    raise NoInputColumnError(" or ".join(KINDS.names()), frame.columns)


def _best_by_name(frame: pd.DataFrame, kinds: list[InputKind]) -> tuple[str, str] | None:
    best: tuple[int, int, str, str] | None = None
    for k in kinds:
        for col in frame.columns:
            rank = k.name_matches(col)
            if rank is not None:
                cand = (k.name_priority, rank, k.name, col)
                if best is None or cand[:2] < best[:2]:
                    best = cand
    return (best[2], best[3]) if best is not None else None


def _column_for(frame: pd.DataFrame, kind: str) -> str:
    k = get_kind(kind)
    found = _best_by_name(frame, [k])
    if found is not None:
        return found[1]
    col = _column_by_content(frame, k)
    if col is None:
        raise NoInputColumnError(k.name, frame.columns)
    return col


def _text_columns(frame: pd.DataFrame) -> list[Any]:
    return [
        c
        for c in frame.columns
        if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
    ]


def _column_by_content(frame: pd.DataFrame, k: InputKind) -> str | None:
    best, best_rate = None, 0.0
    for col in _text_columns(frame):
        values = frame[col].dropna().head(30).tolist()
        if any(get_kind(x).content_score(values) > 0 for x in k.excludes()):
            continue
        rate = k.content_score(values)
        if rate > best_rate:
            best, best_rate = col, rate
    return best if best_rate >= CONTENT_THRESHOLD else None


def _kind_of_column(frame: pd.DataFrame, col: str) -> str:
    found = _best_by_name(frame[[col]], [e.obj for e in KINDS.entries()])
    if found is not None:
        return found[0]
    for k in sorted((e.obj for e in KINDS.entries()), key=lambda k: k.content_priority):
        if _column_by_content(frame[[col]], k) is not None:
            return k.name
    raise NoInputColumnError(f"recognisable input in column {col!r}", frame.columns)
