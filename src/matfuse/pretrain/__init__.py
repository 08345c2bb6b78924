"""Pretraining our own chemical foundation models (encoder–decoders with a latent bottleneck)."""

from matfuse.pretrain.autoencoder import ModelConfig, MoleculeAutoencoder
from matfuse.pretrain.checkpoint import LoadedModel, load_model_dir, save_model_dir
from matfuse.pretrain.tokenizers import SelfiesTokenizer, SmilesTokenizer, Tokenizer
from matfuse.pretrain.trainer import MODEL_PRESETS, TrainConfig, pretrain

__all__ = [
    "MODEL_PRESETS",
    "LoadedModel",
    "ModelConfig",
    "MoleculeAutoencoder",
    "SelfiesTokenizer",
    "SmilesTokenizer",
    "TrainConfig",
    "Tokenizer",
    "load_model_dir",
    "pretrain",
    "save_model_dir",
]
