"""Where the shipped foundation models live (``matfuse/weights/<name>/``); no torch needed."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_ROOT = Path(__file__).resolve().parent.parent / "weights"


def weights_dir(name: str) -> Path:
    """Where a shipped model's directory is."""
    return WEIGHTS_ROOT / name


def shipped_models() -> list[str]:
    """Names of the foundation models whose weights ship with this installation."""
    if not WEIGHTS_ROOT.exists():
        return []
    return sorted(p.name for p in WEIGHTS_ROOT.iterdir() if (p / "config.json").exists())
