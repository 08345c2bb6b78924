"""Report figures: parity, ROC, error vs. similarity, and encoder comparison bars.

Figures are built as ``matplotlib.figure.Figure`` objects and saved through the Agg
canvas directly, never through ``pyplot``. That keeps the library free of global
backend state (no ``matplotlib.use`` side effects on the caller, works headless and in
threads) and means no figure is registered with pyplot, so nothing can leak; each
function still clears its figure after saving. Every function writes one PNG and
returns its path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from matfuse.evaluate.metrics import (
    HIGHER_IS_BETTER,
    classification_metrics,
    error_by_similarity,
    regression_metrics,
)

__all__ = ["comparison_bar_plot", "parity_plot", "residual_vs_similarity_plot", "roc_plot"]

DPI = 120
_METRIC_LABELS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "spearman": "Spearman ρ",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "accuracy": "Accuracy",
    "log_loss": "Log-loss",
    "brier": "Brier score",
}
_SIMILARITY_LABEL = "Tanimoto similarity to nearest training molecule (Morgan r=2)"


def _label(base: str, units: str | None) -> str:
    return f"{base} ({units})" if units else base


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    fig.clear()
    return out


def _direction(metric_name: str) -> bool | None:
    """Higher-is-better for a metric label such as ``"roc_auc"`` or ``"test RMSE (log)"``.

    Callers often pass a display label rather than the metric key; looking for a known
    metric among its words still lets the plot mark the best bar.
    """
    words = re.findall(r"[a-z0-9²_]+", metric_name.lower().replace("-", "_"))
    found = {HIGHER_IS_BETTER[w] for w in words if w in HIGHER_IS_BETTER}
    found |= {True for w in words if w == "r²"}
    return found.pop() if len(found) == 1 else None


def _no_data(ax: Axes, message: str) -> None:
    # An explicit placeholder beats a missing file: the report lists every figure.
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _marker_style(n: int) -> dict[str, Any]:
    # Large test sets (HIV: 4k) turn into an ink blot with default markers.
    if n > 2000:
        return {"s": 6, "alpha": 0.35}
    if n > 300:
        return {"s": 12, "alpha": 0.5}
    return {"s": 22, "alpha": 0.8}


def parity_plot(
    y_true: Any,
    y_pred: Any,
    std: Any = None,
    title: str = "",
    path: str | Path = "parity.png",
    *,
    units: str | None = None,
) -> Path:
    """Predicted vs. observed with the y = x line and RMSE/MAE/R²/n in the corner.

    ``std`` (predictive standard deviation) adds vertical error bars; NaN std draws none.
    """
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(p)
    fig = Figure(figsize=(5.2, 5.0))
    ax = fig.add_subplot()
    if not ok.any():
        _no_data(ax, "no finite label/prediction pairs")
    else:
        t, p = t[ok], p[ok]
        style = _marker_style(t.size)
        if std is not None:
            s = np.nan_to_num(np.asarray(std, dtype=np.float64).ravel()[ok], nan=0.0)
            ax.errorbar(
                t, p, yerr=s, fmt="none", ecolor="0.6", elinewidth=0.7, alpha=style["alpha"]
            )
        ax.scatter(t, p, edgecolors="none", **style)
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        lims = (lo - pad, hi + pad)
        ax.plot(lims, lims, "k--", lw=1, label="y = x")
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        ax.set_aspect("equal")
        m = regression_metrics(t, p)
        text = f"RMSE = {m['rmse']:.3g}\nMAE = {m['mae']:.3g}\nR² = {m['r2']:.3f}\nn = {m['n']}"
        ax.text(
            0.04,
            0.96,
            text,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
        )
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xlabel(_label("Observed", units))
    ax.set_ylabel(_label("Predicted", units))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def roc_plot(y_true: Any, y_score: Any, title: str = "", path: str | Path = "roc.png") -> Path:
    """ROC curve with its AUC and the chance diagonal; a placeholder if single-class."""
    m = classification_metrics(y_true, y_score)
    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance")
    if np.isfinite(m["roc_auc"]):
        t = np.asarray(y_true, dtype=np.float64).ravel()
        s = np.asarray(y_score, dtype=np.float64).ravel()
        ok = np.isfinite(t) & np.isfinite(s)
        from sklearn.metrics import roc_curve  # lazy: keeps the package import light

        fpr, tpr, _ = roc_curve(t[ok], s[ok])
        ax.plot(fpr, tpr, lw=2, label=f"ROC-AUC = {m['roc_auc']:.3f}")
        ax.plot([], [], " ", label=f"n = {m['n']} ({m['n_positive']} positive)")
    else:
        _no_data(ax, m.get("note", "ROC undefined"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _save(fig, path)


def residual_vs_similarity_plot(
    residuals_or_abs_err: Any,
    nn_similarity: Any,
    title: str = "",
    path: str | Path = "residual_vs_similarity.png",
    *,
    n_bins: int = 10,
    units: str | None = None,
) -> Path:
    """|error| against similarity to the nearest training molecule, with binned means.

    Signed residuals are accepted (their absolute value is plotted). Bin counts are
    printed above the binned means so that a mean over three molecules is not read as
    a trend.
    """
    err = np.abs(np.asarray(residuals_or_abs_err, dtype=np.float64).ravel())
    sim = np.asarray(nn_similarity, dtype=np.float64).ravel()
    ok = np.isfinite(err) & np.isfinite(sim)
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.add_subplot()
    if not ok.any():
        _no_data(ax, "no finite error/similarity pairs")
    else:
        ax.scatter(
            sim[ok],
            err[ok],
            color="C0",
            edgecolors="none",
            label="test molecule",
            **_marker_style(int(ok.sum())),
        )
        bins = error_by_similarity(err, sim, n_bins=n_bins)
        centres = [(b["lo"] + b["hi"]) / 2 for b in bins]
        means = [b["mean_abs_error"] for b in bins]
        ax.plot(centres, means, "o-", color="C3", lw=2, label="mean |error| per bin")
        for x, y, b in zip(centres, means, bins, strict=True):
            ax.annotate(
                f"{b['n']}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
                color="C3",
            )
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(_SIMILARITY_LABEL)
    ax.set_ylabel(_label("|error|", units))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def comparison_bar_plot(
    table: Mapping[str, float | tuple[float, float]],
    metric_name: str,
    path: str | Path = "comparison.png",
    *,
    higher_is_better: bool | None = None,
    title: str = "",
) -> Path:
    """Horizontal bars of one metric per model (e.g. single encoders vs. fused).

    Values may be floats or ``(mean, std)`` pairs (over seeds), drawn as error bars.
    Bars keep the table's order; the best one is highlighted when the metric's
    direction is known (``higher_is_better``, else a known metric name such as "rmse"
    or "ROC-AUC" found in ``metric_name``).
    NaN entries are shown as "n/a" rather than dropped, so missing runs stay visible.
    """
    names = list(table)
    means, errs = [], []
    for value in table.values():
        if isinstance(value, tuple | list):
            means.append(float(value[0]))
            errs.append(float(value[1]))
        else:
            means.append(float(value))
            errs.append(0.0)
    mean_arr = np.asarray(means)
    direction = higher_is_better if higher_is_better is not None else _direction(metric_name)
    best = None
    if direction is not None and np.isfinite(mean_arr).any():
        finite = np.where(np.isfinite(mean_arr), mean_arr, -np.inf if direction else np.inf)
        best = int(np.argmax(finite) if direction else np.argmin(finite))

    fig = Figure(figsize=(6.4, 1.2 + 0.45 * max(len(names), 1)))
    ax = fig.add_subplot()
    if not names:
        _no_data(ax, "no entries")
    else:
        ypos = np.arange(len(names))
        colors = ["C1" if i == best else "C0" for i in range(len(names))]
        ax.barh(ypos, np.nan_to_num(mean_arr), color=colors, alpha=0.85)
        has_err = np.asarray(errs) > 0
        if has_err.any():  # a zero-length error bar would still draw a stray cap
            ax.errorbar(
                mean_arr[has_err],
                ypos[has_err],
                xerr=np.asarray(errs)[has_err],
                fmt="none",
                ecolor="0.3",
                capsize=3,
            )
        ax.set_yticks(ypos, labels=names)
        ax.invert_yaxis()  # first entry on top, as in the table
        span = np.nanmax(np.abs(mean_arr)) if np.isfinite(mean_arr).any() else 1.0
        for y, v, e in zip(ypos, mean_arr, errs, strict=True):
            text = "n/a" if not np.isfinite(v) else (f"{v:.3g} ± {e:.2g}" if e else f"{v:.3g}")
            # right of the bar end, or of the zero line for negative bars
            x = (max(v + e, 0.0) if np.isfinite(v) else 0.0) + 0.01 * span
            ax.text(x, float(y), text, va="center", fontsize=8)
        if np.isfinite(mean_arr).any():
            # room on the right for the value labels; bars start at 0 even if all < 0
            right = max(0.0, float(np.nanmax(mean_arr + np.asarray(errs))))
            ax.set_xlim(right=right + 0.2 * span)
    arrow = (
        "" if direction is None else (" (higher is better)" if direction else " (lower is better)")
    )
    ax.set_xlabel(f"{_METRIC_LABELS.get(metric_name.strip().lower(), metric_name)}{arrow}")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
