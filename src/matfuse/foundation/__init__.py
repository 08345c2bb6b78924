"""Our pretrained chemical foundation models: architectures, tokenizers, model directories,
inference, and the encoders that put them behind the encoder registry.

* :mod:`~matfuse.foundation.autoencoder` (transformer, :mod:`~matfuse.foundation.ssm`
  Mamba-2 and :mod:`~matfuse.foundation.graphs` GIN encoders, one latent decoder),
* :mod:`~matfuse.foundation.tokenizers` (SMILES and SELFIES vocabularies),
* :mod:`~matfuse.foundation.model_dir` (the shipped/exported directory format with its
  manifest), :mod:`~matfuse.foundation.inference` (encode, decode, sample, interpolate),
* :mod:`~matfuse.foundation.encoders` (``smi-ted``, ``selfies-ted``, ``smi-ssed``,
  ``graph-ged`` as scikit-learn encoders) and :mod:`~matfuse.foundation.weights` (where the
  shipped weights are).

Training them is :mod:`matfuse.pretrain`'s job. Names here load lazily: importing this
package, the encoders or the weights locations does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "FOUNDATION_ENCODERS": "matfuse.foundation.encoders",
    "FoundationEncoder": "matfuse.foundation.encoders",
    "LoadedModel": "matfuse.foundation.model_dir",
    "ModelConfig": "matfuse.foundation.autoencoder",
    "MoleculeAutoencoder": "matfuse.foundation.autoencoder",
    "SelfiesTokenizer": "matfuse.foundation.tokenizers",
    "SmilesTokenizer": "matfuse.foundation.tokenizers",
    "Tokenizer": "matfuse.foundation.tokenizers",
    "WEIGHTS_ROOT": "matfuse.foundation.weights",
    "load_model_dir": "matfuse.foundation.model_dir",
    "save_model_dir": "matfuse.foundation.model_dir",
    "shipped_models": "matfuse.foundation.weights",
    "weights_dir": "matfuse.foundation.weights",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'matfuse.foundation' has no attribute {name!r}")
