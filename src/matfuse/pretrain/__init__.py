"""Pretraining our foundation models: corpus streaming, the training loop, checkpoints.

The models themselves (architectures, tokenizers, model directories, inference) are
:mod:`matfuse.foundation`'s; this package only trains them (``matfuse pretrain``).
"""

from matfuse.pretrain.trainer import MODEL_PRESETS, TrainConfig, pretrain

__all__ = ["MODEL_PRESETS", "TrainConfig", "pretrain"]
