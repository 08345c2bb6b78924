"""Encoders: one scikit-learn transformer per representation, found through one registry."""

from matfuse.encoders.base import BaseEncoder, EncodedBlock, MoleculeEncoder, valid_rows
from matfuse.encoders.registry import (
    ENCODERS,
    EncoderSpec,
    get_encoder,
    list_encoders,
    parse_encoder_spec,
    register_encoder,
)

__all__ = [
    "ENCODERS",
    "BaseEncoder",
    "EncodedBlock",
    "EncoderSpec",
    "MoleculeEncoder",
    "get_encoder",
    "list_encoders",
    "parse_encoder_spec",
    "register_encoder",
    "valid_rows",
]
