"""Seed versus generated molecules: the properties a chemist checks first, side by side.

A score in [0, 1] says how well a candidate meets the objective, not how it differs from the
molecule the user started from. This table puts the seed (the *Seed SMILES*) in the first
row and the top candidates below it, with QED, synthetic accessibility (SA, 1 easy .. 10
hard), Crippen logP, molecular weight and the Tanimoto similarity to the seed (Morgan
radius 2), plus a last row with the candidates' median. The properties come from the
generation property registry (:data:`matfuse.generate.properties.PROPERTIES`), so they are
the same numbers an objective on ``qed``/``sa``/``logp``/``mw`` would use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["COMPARED", "seed_comparison"]

#: (registry name, column label) of the properties compared
COMPARED = (("qed", "QED"), ("sa", "SA"), ("logp", "logP"), ("mw", "MW"))
SIMILARITY = "similarity to seed"
SHOWN = 10


def _properties(mol: Any) -> dict[str, float]:
    from matfuse.generate.properties import PROPERTIES

    out: dict[str, float] = {}
    for name, label in COMPARED:
        try:
            out[label] = float(PROPERTIES.get(name)(mol))
        except Exception:  # noqa: BLE001 - one odd molecule must not lose the table
            out[label] = float("nan")
    return out


def seed_comparison(
    seed: str | None, candidates: Sequence[str], limit: int = SHOWN
) -> pd.DataFrame | None:
    """The comparison table, or ``None`` when the seed is missing or not a molecule."""
    from matfuse.chem.similarity import morgan_bitvect, tanimoto_to_set
    from matfuse.chem.standardize import quiet_rdkit, to_mol

    seed = (seed or "").strip()
    if not seed:
        return None
    with quiet_rdkit():
        seed_mol = to_mol(seed)
        if seed_mol is None:
            return None
        seed_fp = morgan_bitvect(seed_mol)
        if seed_fp is None:
            return None
        rows: list[dict[str, object]] = [
            {"molecule": "seed", "smiles": seed, **_properties(seed_mol), SIMILARITY: 1.0}
        ]
        for rank, smi in enumerate(list(candidates)[:limit], start=1):
            mol = to_mol(smi)
            if mol is None:
                continue
            fp = morgan_bitvect(mol)
            sim = float(tanimoto_to_set(fp, [seed_fp])[0]) if fp is not None else float("nan")
            rows.append(
                {"molecule": f"#{rank}", "smiles": smi, **_properties(mol), SIMILARITY: sim}
            )
    frame = pd.DataFrame(rows)
    if len(frame) > 1:
        numeric = [label for _, label in COMPARED] + [SIMILARITY]
        median = frame.iloc[1:][numeric].median(numeric_only=True)
        summary = {"molecule": f"median of top {len(frame) - 1}", "smiles": "", **median}
        frame = pd.concat([frame, pd.DataFrame([summary])], ignore_index=True)
    for col in frame.columns:
        if pd.api.types.is_float_dtype(frame[col]):
            frame[col] = np.round(frame[col], 3)
    return frame
