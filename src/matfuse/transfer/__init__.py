"""Transfer learning for property models (XenonPy.MDL, Yamada et al. 2019).

* :mod:`~matfuse.transfer.network` — the source MLP on composition features;
* :mod:`~matfuse.transfer.library` — a directory of sources (one per property table), with
  row fingerprints that let a target's own data be recognised and excluded;
* :mod:`~matfuse.transfer.build` — building a library (``matfuse transfer-build``);
* :mod:`~matfuse.transfer.encoder` — the ``transfer`` encoder (penultimate activations);
* :mod:`~matfuse.transfer.finetune` — the ``transfer-mlp`` model (fine-tuned source net);
* :mod:`~matfuse.transfer.shotgun` — shotgun transfer: every source, frozen and fine-tuned,
  picked by cross-validation on the target (``matfuse transfer-shotgun``).

Names are imported lazily (torch loads on first use, not with the CLI).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SourceMLP": "network",
    "SourceLibrary": "library",
    "load_library": "library",
    "check_leakage": "library",
    "DEFAULT_LIBRARY": "library",
    "build_library": "build",
    "find_tables": "build",
    "read_table": "build",
    "TransferEncoder": "encoder",
    "TransferMLPRegressor": "finetune",
    "shotgun": "shotgun",
    "ShotgunResult": "shotgun",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'matfuse.transfer' has no attribute {name!r}")
    return getattr(import_module(f"matfuse.transfer.{_EXPORTS[name]}"), name)
