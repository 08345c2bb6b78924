"""Pictures for the UI: molecule depictions, the 2-D latent map and residual plots.

(Crystal structures are drawn by :mod:`matfuse.app.crystal_view`.)

Matplotlib figures are built as ``Figure`` objects and saved through the Agg canvas, never
through ``pyplot``, because Gradio runs callbacks in worker threads and pyplot's global state
is not thread-safe (the same rule as :mod:`matfuse.evaluate.plots`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from matfuse.encoders.base import valid_rows
from matfuse.fusion.late import LateFusion

#: Molecules drawn per selection or prediction batch: enough to compare, few enough to read.
MAX_DEPICTIONS = 24
DEPICTION_SIZE = (260, 200)


def umap_available() -> bool:
    """UMAP is optional (``umap-learn`` is a heavy dependency); PCA always works."""
    return importlib.util.find_spec("umap") is not None


def projection_methods() -> list[str]:
    """PCA (linear, shows explained variance), then UMAP when installed, else t-SNE.

    UMAP and t-SNE keep neighbourhoods that PCA flattens; UMAP is offered first because it
    is faster on thousands of points and keeps more of the global layout. t-SNE (from
    scikit-learn, always installed) stays available either way.
    """
    return ["PCA", "UMAP", "t-SNE"] if umap_available() else ["PCA", "t-SNE"]


#: UMAP and t-SNE run on the first principal components: faster, and the noise in the
#: trailing components of a 2,000-d fingerprint does not shape the neighbourhoods.
PRE_PCA = 50


def _neighbour_embedding(X: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, str]:
    from sklearn.decomposition import PCA

    n = X.shape[0]
    k = min(PRE_PCA, X.shape[1], n - 1)
    if X.shape[1] > k:
        X = PCA(n_components=k, random_state=seed).fit_transform(X)
    if method == "UMAP":
        if not umap_available():
            raise ValueError("UMAP is not installed (pip install umap-learn); use PCA or t-SNE")
        import umap

        neighbours = int(min(15, n - 1))
        coords = umap.UMAP(
            n_components=2, n_neighbors=neighbours, random_state=seed, n_jobs=1
        ).fit_transform(X)
        return np.asarray(coords), f"UMAP of the fused representation ({neighbours} neighbours)"
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    coords = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed
    ).fit_transform(X)
    return np.asarray(coords), f"t-SNE of the fused representation (perplexity {perplexity:.0f})"


def depict(smiles: str | None, size: tuple[int, int] = DEPICTION_SIZE) -> Image.Image | None:
    """A 2-D depiction of one molecule, or ``None`` if RDKit cannot parse it."""
    if not isinstance(smiles, str) or not smiles:  # None, or NaN from a pandas column
        return None
    from rdkit import Chem
    from rdkit.Chem import Draw

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    return Draw.MolToImage(mol, size=size)


def depiction_gallery(
    smiles: Sequence[str | None], captions: Sequence[str], limit: int = MAX_DEPICTIONS
) -> list[tuple[Image.Image, str]]:
    """(image, caption) pairs for ``gr.Gallery``; unparsable molecules are left out."""
    items: list[tuple[Image.Image, str]] = []
    for smi, caption in zip(smiles, captions, strict=True):
        if len(items) >= limit:
            break
        image = depict(smi)
        if image is not None:
            items.append((image, caption))
    return items


def latent_map(
    blocks: dict[str, np.ndarray],
    encoders: Sequence[str],
    method: str = "PCA",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Project the fused representation of every usable row to 2-D.

    The map shows the same fused matrix the model is trained on (per-block scaling and
    equal block weights from :class:`LateFusion`), so clusters on screen are what the
    downstream model sees. Returns the coordinates, the row indices they belong to and a
    note on the explained variance (PCA) or the method used.
    """
    fusion = LateFusion(encoders=list(encoders))
    ok = np.logical_or.reduce([valid_rows(np.asarray(blocks[e])) for e in encoders])
    rows = np.flatnonzero(ok)
    if rows.size < 3:
        raise ValueError("fewer than three rows could be encoded; nothing to map")
    sub = {e: blocks[e][rows] for e in encoders}
    X = np.nan_to_num(fusion.fit_blocks(sub).transform_blocks(sub).astype(np.float64))
    name = {"UMAP": "UMAP", "T-SNE": "t-SNE", "TSNE": "t-SNE"}.get(method.upper())
    if name is not None:
        coords, note = _neighbour_embedding(X, name, seed)
        return coords, rows, note
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(X)
    coords = pca.transform(X)
    share = pca.explained_variance_ratio_
    note = f"PCA of the fused representation: PC1 {share[0]:.0%}, PC2 {share[1]:.0%} of variance"
    return coords, rows, note


def map_frame(
    coords: np.ndarray,
    rows: np.ndarray,
    smiles: Sequence[str | None],
    target: np.ndarray | None,
    target_name: str,
    item: str = "molecule",
    key: str = "smiles",
) -> pd.DataFrame:
    """The table behind the scatter plot: coordinates, row number, identity and target.

    ``row`` is the 0-based dataset index the click handler sends back; ``item`` (``molecule``
    or ``material``) is the 1-based label (``#12``) shown in tooltips, matching the captions
    and the preview; ``key`` names the identity column (``smiles`` or ``formula``).
    """
    frame = pd.DataFrame(
        {
            "x": np.round(coords[:, 0], 4),
            "y": np.round(coords[:, 1], 4),
            "row": rows.astype(int),
            item: [f"#{int(i) + 1}" for i in rows],
            key: [smiles[i] for i in rows],
        }
    )
    if target is not None:
        frame[target_name] = np.asarray(target, dtype=float)[rows]
    return frame


def rows_in_range(frame: pd.DataFrame, x_range: Sequence[float], limit: int) -> pd.DataFrame:
    """Points whose x lies in a brushed range, nearest the range centre first."""
    lo, hi = sorted(float(v) for v in x_range[:2])
    inside = frame[(frame["x"] >= lo) & (frame["x"] <= hi)]
    centre = (lo + hi) / 2
    order = np.argsort(np.abs(inside["x"].to_numpy() - centre), kind="stable")
    return inside.iloc[order[:limit]]


def rows_near(frame: pd.DataFrame, row: int, limit: int) -> pd.DataFrame:
    """The point of dataset row ``row`` followed by its nearest neighbours on the map.

    Distances are taken on the 2-D map (what the user sees), with both axes scaled to unit
    spread so that a long, flat cloud does not reduce to "neighbours along x". Empty if
    ``row`` is not on the map.
    """
    hit = np.flatnonzero(frame["row"].to_numpy() == row)
    if hit.size == 0:
        return frame.iloc[:0]
    xy = frame[["x", "y"]].to_numpy(dtype=float)
    spread = xy.std(axis=0)
    xy = xy / np.where(spread > 0, spread, 1.0)
    distance = np.linalg.norm(xy - xy[hit[0]], axis=1)
    distance[hit[0]] = -1.0  # the clicked point always comes first
    return frame.iloc[np.argsort(distance, kind="stable")[:limit]]


def residual_plot(
    y_true: Any, y_pred: Any, title: str, path: str | Path, units: str | None = None
) -> Path:
    """Residual (predicted − observed) against the prediction, with a zero line.

    Shows bias that a parity plot hides: a trend means the model shrinks extremes.
    """
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    ok = np.isfinite(t) & np.isfinite(p)
    fig = Figure(figsize=(5.6, 4.2))
    ax = fig.add_subplot()
    if ok.any():
        res = p[ok] - t[ok]
        ax.scatter(p[ok], res, s=14, alpha=0.7, edgecolors="none")
        ax.axhline(0.0, color="k", ls="--", lw=1)
        ax.text(
            0.03,
            0.96,
            f"mean = {res.mean():.3g}\nsd = {res.std():.3g}\nn = {ok.sum()}",
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
        )
    else:
        ax.text(0.5, 0.5, "no finite pairs", ha="center", va="center", transform=ax.transAxes)
    unit = f" ({units})" if units else ""
    ax.set_xlabel(f"Predicted{unit}")
    ax.set_ylabel(f"Residual: predicted − observed{unit}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    fig.clear()
    return out
