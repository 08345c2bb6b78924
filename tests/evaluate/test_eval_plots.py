"""Each figure function writes a real PNG, tolerates degenerate input, leaks nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib import _pylab_helpers

from matfuse.evaluate.plots import (
    comparison_bar_plot,
    parity_plot,
    residual_vs_similarity_plot,
    roc_plot,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
Y = RNG.normal(size=60)
P = Y + RNG.normal(scale=0.4, size=60)


def _is_png(path: Path, min_bytes: int = 8_000) -> bool:
    data = Path(path).read_bytes()
    return data[:8] == PNG_MAGIC and len(data) >= min_bytes


@pytest.fixture(autouse=True)
def _no_open_figures():
    yield
    assert _pylab_helpers.Gcf.get_num_fig_managers() == 0


def test_parity_plot(tmp_path):
    out = parity_plot(
        Y, P, std=np.abs(P - Y), title="logS", path=tmp_path / "sub" / "p.png", units="log mol/L"
    )
    assert out == tmp_path / "sub" / "p.png" and _is_png(out)


def test_parity_plot_with_nan_and_no_data(tmp_path):
    y = Y.copy()
    y[:5] = np.nan
    assert _is_png(parity_plot(y, P, None, "x", tmp_path / "a.png"))
    assert _is_png(parity_plot([np.nan], [1.0], path=tmp_path / "b.png"), min_bytes=2_000)


def test_roc_plot_and_single_class_placeholder(tmp_path):
    labels = (Y > 0).astype(float)
    assert _is_png(roc_plot(labels, 1 / (1 + np.exp(-P)), "active", tmp_path / "roc.png"))
    assert _is_png(
        roc_plot(np.zeros(5), np.linspace(0, 1, 5), "x", tmp_path / "r1.png"), min_bytes=2_000
    )


def test_residual_vs_similarity_plot(tmp_path):
    sim = RNG.uniform(0.1, 1.0, size=60)
    out = residual_vs_similarity_plot(P - Y, sim, "logS", tmp_path / "rs.png", units="log units")
    assert _is_png(out)
    assert _is_png(
        residual_vs_similarity_plot([np.nan], [0.5], path=tmp_path / "e.png"), min_bytes=2_000
    )


def test_comparison_bar_plot(tmp_path):
    table = {
        "morgan": 0.81,
        "mordred": (0.79, 0.02),
        "chemberta": float("nan"),
        "fused (morgan+mordred)": 0.84,
    }
    assert _is_png(comparison_bar_plot(table, "roc_auc", tmp_path / "cmp.png"))
    assert _is_png(
        comparison_bar_plot({"a": -0.2, "b": -0.5}, "r2", tmp_path / "neg.png"), min_bytes=4_000
    )


def test_metric_direction_is_read_from_display_labels():
    from matfuse.evaluate.plots import _direction

    assert _direction("test RMSE (log mol/L)") is False
    assert _direction("ROC-AUC") is True and _direction("R²") is True
    assert _direction("fit seconds") is None
