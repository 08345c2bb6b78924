"""Small helpers shared by tests (importable because tests/ is on the path via conftest)."""

from __future__ import annotations

import numpy as np


def logp(smiles: list[str]) -> np.ndarray:
    """A learnable synthetic target: Crippen logP (deterministic, RDKit-computed)."""
    from rdkit import Chem
    from rdkit.Chem import Crippen

    return np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])


# tiny foundation-model settings shared by tests/foundation and tests/pretrain (trains in
# about a second)
TINY_MODEL = {
    "d_model": 32,
    "n_heads": 2,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "latent_dim": 16,
    "n_memory": 2,
    "max_len": 64,
}


def tiny_train_config(**kw):
    from matfuse.pretrain import TrainConfig

    base = dict(
        steps=30,
        batch_size=32,
        warmup=5,
        eval_every=15,
        checkpoint_every=10,
        log_every=5,
        n_heldout=40,
        eval_size=20,
        chunk_size=150,
        latent_stats_rows=100,
        threads=1,
    )
    return TrainConfig(**{**base, **kw})
