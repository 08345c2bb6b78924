"""A tiny source library built in the test session from synthetic composition tables."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matfuse.transfer.build import PropertyTable, build_library
from matfuse.transfer.features import composition_features
from matfuse.transfer.library import SourceLibrary, load_library

ELEMENTS = [
    "Li",
    "Na",
    "K",
    "Mg",
    "Ca",
    "Sr",
    "Al",
    "Ga",
    "Si",
    "Ge",
    "Sn",
    "Ti",
    "Zr",
    "Fe",
    "Co",
    "Ni",
    "Cu",
    "Zn",
    "O",
    "S",
    "Se",
    "N",
    "P",
    "F",
    "Cl",
]
TINY = {"hidden": (32, 16), "max_epochs": 40, "patience": 8}


def synthetic_formulas(n: int, seed: int) -> list[str]:
    """Distinct binary formulas AxBy (x, y in 1..3) drawn from ELEMENTS."""
    pairs = list(itertools.combinations(ELEMENTS, 2))
    rng = np.random.default_rng(seed)
    seen: dict[str, str] = {}
    for i in rng.permutation(len(pairs) * 9):
        (a, b), (x, y) = pairs[i // 9], divmod(i % 9, 3)
        formula = f"{a}{x + 1}{b}{y + 1}"
        key = composition_features([formula])[0][0]
        if key is not None and key not in seen:
            seen[key] = formula
        if len(seen) >= n:
            break
    return list(seen.values())


def property_of(formulas: list[str], which: str) -> np.ndarray:
    """Smooth functions of the composition features (what a source can learn)."""
    _, X, _ = composition_features(formulas)
    z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    if which == "a":  # e.g. 'band gap': electronegativity spread and mean row
        return 2.0 * z[:, 9 + 23] - 1.0 * z[:, 6] + 0.3 * z[:, 1]
    if which == "b":  # a related target: shares part of a's signal
        return 1.5 * z[:, 9 + 23] + 0.8 * z[:, 10] ** 2
    return np.sin(z[:, 2]) + 0.5 * z[:, 40]  # unrelated


@pytest.fixture(scope="session")
def tables() -> dict[str, pd.DataFrame]:
    formulas = synthetic_formulas(420, seed=0)
    return {
        "prop_a": pd.DataFrame(
            {"formula": formulas[:400], "target": property_of(formulas[:400], "a")}
        ),
        "prop_c": pd.DataFrame(
            {"formula": formulas[20:420], "target": property_of(formulas[20:420], "c")}
        ),
    }


@pytest.fixture(scope="session")
def library_dir(tables: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transfer")
    built = []
    for name, frame in tables.items():
        path = root / f"{name}.csv"
        frame.to_csv(path, index=False)
        built.append(PropertyTable(name, list(frame.formula), frame.target.to_numpy(), [str(path)]))
    lib = build_library(built, params=TINY, command="pytest fixture")
    out = root / "library"
    lib.save(out, card="# test library\n")
    return out


@pytest.fixture(scope="session")
def library(library_dir: Path) -> SourceLibrary:
    return load_library(library_dir)
