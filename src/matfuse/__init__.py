"""matfuse: multimodal representations of molecules and materials; fuse, learn, generate.

The convenience API mirrors fm4m-kit::

    import matfuse
    X = matfuse.get_representation("ecfp-count", smiles)
    enc = matfuse.load_encoder("chemnet"); Z = enc.transform(smiles)
    metrics = matfuse.evaluate_fused(["ecfp-count", "rdkit2d"], train_smiles, y_train,
                                     test_smiles, y_test)

and the scikit-learn objects (encoders, :class:`LateFusion`, :class:`PropertyModel`) are
there for users who compose their own pipelines. Inverse design lives in
:mod:`matfuse.generate` (``from matfuse.generate import generate``; the function is not
re-exported here because its name is the subpackage's). Heavy submodules load lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "get_representation": "matfuse.api",
    "load_encoder": "matfuse.api",
    "evaluate_single": "matfuse.api",
    "evaluate_fused": "matfuse.api",
    "crystal_search": "matfuse.api",
    "get_encoder": "matfuse.encoders",
    "list_encoders": "matfuse.encoders",
    "register_encoder": "matfuse.encoders",
    "LateFusion": "matfuse.fusion",
    "PropertyModel": "matfuse.pipeline",
    "PropertyEstimator": "matfuse.models",
    "parse_smiles": "matfuse.chem",
    "load_input_table": "matfuse.inputs",
    "CrystalGraphRegressor": "matfuse.models.crystal_graph",
    "relax_structures": "matfuse.materials.energy",
    "Objective": "matfuse.generate",
    "load_objective": "matfuse.generate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'matfuse' has no attribute {name!r}")
