"""Train/valid/test splitters for every input kind, in one registry.

``make_splitter(name, **params)`` builds any of them; ``list_splitters(kind)`` names those
that apply to an input kind (the row-only ones apply to all). Modules: ``base`` (the
contract and the group-assignment helpers), ``rows`` (random, k-fold, property tail,
predefined), ``molecules`` (scaffold, cluster), ``materials`` (space group, element,
chemical system).
"""

from __future__ import annotations

from typing import Any

from matfuse.evaluate.splitters.base import (
    REQUIRED,
    SPLITTERS,
    GroupSplitter,
    Split,
    Splitter,
    build_splitter,
    parameters_of,
)
from matfuse.evaluate.splitters.materials import (
    ChemicalSystemSplitter,
    ElementHoldoutSplitter,
    SpaceGroupSplitter,
)
from matfuse.evaluate.splitters.molecules import ClusterSplitter, ScaffoldSplitter, scaffold_overlap
from matfuse.evaluate.splitters.rows import (
    KFoldSplitter,
    PredefinedSplitter,
    PropertyOODSplitter,
    RandomSplitter,
)

__all__ = [
    "SPLITTERS",
    "ChemicalSystemSplitter",
    "ClusterSplitter",
    "ElementHoldoutSplitter",
    "GroupSplitter",
    "KFoldSplitter",
    "PredefinedSplitter",
    "PropertyOODSplitter",
    "RandomSplitter",
    "ScaffoldSplitter",
    "SpaceGroupSplitter",
    "Split",
    "REQUIRED",
    "Splitter",
    "build_splitter",
    "list_splitters",
    "make_splitter",
    "splitter_params",
    "scaffold_overlap",
]


def list_splitters(kind: str | None = None) -> list[str]:
    """Names accepted by :func:`make_splitter`; with ``kind``, those that apply to it."""
    if kind is None:
        return SPLITTERS.names()
    from matfuse.inputs import convertible, kind_names

    out = []
    for entry in SPLITTERS.entries():
        needs = entry.obj.needs
        if needs is None or any(convertible(k, needs) for k in kind_names(kind)):
            out.append(entry.name)
    return out


def splitter_params(name: str) -> dict[str, Any]:
    """The parameters splitter ``name`` takes, with defaults (``REQUIRED`` where none).

    >>> sorted(splitter_params("kfold"))
    ['n_folds', 'seed', 'valid_size']
    """
    return parameters_of(SPLITTERS.get(name))


def make_splitter(name: str, **params: Any) -> Splitter:
    """Build a splitter by name (see :func:`list_splitters`).

    Unknown names raise ``ValueError`` listing the choices; unknown parameters raise
    ``TypeError`` naming the parameters the splitter accepts, which is what a user editing
    a config needs to see.
    """
    if name not in SPLITTERS:
        raise ValueError(f"unknown splitter {name!r}; choose from {', '.join(list_splitters())}")
    return build_splitter(SPLITTERS.get(name), params)
