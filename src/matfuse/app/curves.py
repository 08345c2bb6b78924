"""Plots of a classifier's test predictions, and the units a column name states.

A classification result used to show one cropped ROC preview. A user deciding where to set a
threshold needs three views: the ROC curve (ranking), the precision–recall curve (what a
positive call is worth when positives are rare) and a calibration plot (whether a predicted
0.8 means 80 %). They are computed with scikit-learn and drawn through the Agg canvas (no
pyplot: Gradio runs handlers in threads).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["classification_plots", "target_units"]

#: "gap (eV)", "yield [MPa]", "log solubility in mols per litre"
_BRACKETED = re.compile(r"[\(\[]\s*([^\(\)\[\]]{1,24}?)\s*[\)\]]\s*$")
_IN_UNITS = re.compile(r"\bin\s+((?:mols?|g|kg|eV|K|nm|MPa|GPa|kJ|kcal|meV)\b[\w/ ]{0,24})$", re.I)
_SUFFIX_UNITS = {"_ev": "eV", "_mev": "meV", "_k": "K", "_gpa": "GPa", "_mpa": "MPa"}


def target_units(name: str) -> str | None:
    """The units a column name states, if any: ``"band gap (eV)"`` → ``"eV"``.

    Only what the data says: brackets at the end, an ``in <units>`` phrase that starts with
    a known unit, or a ``_ev``-style suffix; otherwise ``None`` (never a guess).

    >>> target_units("measured log solubility in mols per litre")
    'log mols per litre'
    >>> target_units("heat_ref (eV/atom)")
    'eV/atom'
    >>> target_units("SOL") is None
    True
    """
    text = str(name).strip()
    found = _BRACKETED.search(text)
    if found:
        return found.group(1)
    found = _IN_UNITS.search(text)
    if found:  # "log solubility in mols per litre" is in log units of mol/L
        units = found.group(1).strip()
        is_log = re.search(r"\blog", text[: found.start()], re.I)
        return f"log {units}" if is_log else units
    lowered = text.lower()
    for suffix, unit in _SUFFIX_UNITS.items():
        if lowered.endswith(suffix):
            return unit
    return None


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clear()
    return path


def classification_plots(
    y_true: Any, p_pred: Any, name: str, directory: str | Path, tag: str = "0"
) -> list[tuple[str, str]]:
    """ROC, precision–recall and calibration plots of test probabilities, as gallery items.

    Rows without a label or a prediction are left out; with only one class present there is
    no curve to draw and the list is empty.
    """
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(p_pred, dtype=float).ravel()
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok].astype(int), np.clip(p[ok], 0.0, 1.0)
    if y.size == 0 or len(np.unique(y)) < 2:
        return []
    out = Path(directory)
    items: list[tuple[str, str]] = []

    fpr, tpr, _ = roc_curve(y, p)
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=f"{name}: ROC")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    items.append((str(_save(fig, out / f"roc_curve_{tag}.png")), f"{name}: ROC (test)"))

    precision, recall, _ = precision_recall_curve(y, p)
    prior = float(y.mean())
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    ap = average_precision_score(y, p)
    ax.step(recall, precision, where="post", lw=2, label=f"AP = {ap:.3f}")
    ax.axhline(prior, color="k", ls="--", lw=1, label=f"prior rate {prior:.2f}")
    ax.set(xlabel="Recall", ylabel="Precision", ylim=(0, 1.02), title=f"{name}: precision–recall")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    items.append((str(_save(fig, out / f"pr_curve_{tag}.png")), f"{name}: precision–recall (test)"))

    n_bins = int(min(10, max(3, y.size // 20)))
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    ax.plot(predicted, observed, "o-", lw=2, label=f"model ({n_bins} bins)")
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed positive rate",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"{name}: calibration",
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    items.append((str(_save(fig, out / f"calibration_{tag}.png")), f"{name}: calibration (test)"))
    return items
