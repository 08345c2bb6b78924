"""Transitional aliases: the materials splitters live in :mod:`matfuse.evaluate.splitters`."""

from typing import Any

from matfuse.evaluate.splitters import (  # noqa: F401
    ChemicalSystemSplitter,
    ElementHoldoutSplitter,
    SpaceGroupSplitter,
    Splitter,
    list_splitters,
    make_splitter,
)


def list_material_splitters() -> list[str]:
    return list_splitters("structure")


def make_material_splitter(name: str, **params: Any) -> Splitter:
    return make_splitter(name, **params)
