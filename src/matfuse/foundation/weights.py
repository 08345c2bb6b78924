"""Where the shipped foundation models live (``matfuse/weights/<name>/``); no torch needed."""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_ROOT = Path(__file__).resolve().parent.parent / "weights"


def weights_dir(name: str) -> Path:
    """Where a shipped model's directory is."""
    return WEIGHTS_ROOT / name


def shipped_models() -> list[str]:
    """Names of the foundation models whose weights ship with this installation."""
    if not WEIGHTS_ROOT.exists():
        return []
    # other model kinds (the crystal generator ``perov5``) ship beside them: not listed here
    return sorted(
        p.name
        for p in WEIGHTS_ROOT.iterdir()
        if (p / "config.json").exists() and not _is_crystal_generator(p)
    )


def _is_crystal_generator(path: Path) -> bool:
    """Whether ``path`` holds a crystal generator (its manifest's ``kind`` says so)."""
    manifest = path / "manifest.json"
    if not manifest.exists():
        return False
    try:
        kind = json.loads(manifest.read_text()).get("kind", "")
    except (ValueError, AttributeError):
        return False
    return isinstance(kind, str) and kind.startswith("matfuse.crystals.")
