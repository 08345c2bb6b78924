"""Using a trained encoder–decoder: encode, decode, reconstruct, interpolate, sample.

These functions take the bare network and tokeniser so that the training loop (evaluating a
held-out slice) and the shipped encoders (``matfuse.load_encoder("selfies-ted")``) share
one implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from matfuse.foundation.autoencoder import MoleculeAutoencoder
from matfuse.foundation.examples import Example, collate, make_example
from matfuse.foundation.tokenizers import EOS_ID, Tokenizer


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_examples(
    model: MoleculeAutoencoder, examples: Sequence[Example], batch_size: int = 256
) -> np.ndarray:
    """Latents (n, latent_dim) of tokenised examples, in order."""
    model.eval()
    device = _device(model)
    out = np.zeros((len(examples), model.cfg.latent_dim), dtype=np.float32)
    # sort by length so that each batch pads little; write back in input order
    order = np.argsort([len(e.ids) for e in examples], kind="stable")
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        batch = collate([examples[j] for j in idx]).to(device)
        out[idx] = model.encode(batch).float().cpu().numpy()
    return out


def examples_for(
    smiles: Sequence[str], tokenizer: Tokenizer, model: MoleculeAutoencoder, truncate: bool = True
) -> list[Example | None]:
    """Examples of SMILES for a model; None where the model cannot read the molecule.

    With ``truncate``, molecules longer than the model's context are cut to fit (their
    latent then describes a prefix: fine as a feature, not for exact reconstruction).
    """
    graph = model.cfg.encoder == "ged"
    max_len = model.cfg.max_len
    out: list[Example | None] = []
    for smi in smiles:
        ex = make_example(smi, tokenizer, 10**6, graph)
        if ex is not None and len(ex.ids) > max_len:
            if not truncate:
                ex = None
            else:
                ex.ids = [*ex.ids[: max_len - 1], EOS_ID]
        out.append(ex)
    return out


@torch.no_grad()
def decode_latents(
    model: MoleculeAutoencoder,
    tokenizer: Tokenizer,
    Z: np.ndarray | torch.Tensor,
    temperature: float = 0.0,
    seed: int | None = None,
    batch_size: int = 512,
) -> list[str | None]:
    """Canonical SMILES decoded from latents (None where the string is not a molecule)."""
    model.eval()
    device = _device(model)
    Z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=device)
    generator = None
    if temperature > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(0 if seed is None else int(seed))
    out: list[str | None] = []
    for i in range(0, Z.shape[0], batch_size):
        ids = model.decoder.generate(
            Z[i : i + batch_size],
            temperature,
            generator=generator,
            first_allowed=tokenizer.first_token_ids(),
        )
        for row in ids.cpu().tolist():
            out.append(tokenizer.to_smiles(tokenizer.decode(row)))
    return out


@torch.no_grad()
def token_accuracy(
    model: MoleculeAutoencoder, examples: Sequence[Example], batch_size: int = 256
) -> float:
    """Teacher-forced next-token accuracy of the decoder given each molecule's latent."""
    model.eval()
    device = _device(model)
    correct = total = 0
    for i in range(0, len(examples), batch_size):
        batch = collate(list(examples[i : i + batch_size])).to(device)
        z = model.encode(batch)
        logits = model.decoder(z, batch.tokens[:, :-1])
        target = batch.tokens[:, 1:]
        real = target != 0
        correct += int(((logits.argmax(-1) == target) & real).sum())
        total += int(real.sum())
    return correct / max(total, 1)


def reconstruction_metrics(
    model: MoleculeAutoencoder, tokenizer: Tokenizer, examples: Sequence[Example]
) -> dict[str, float]:
    """Token accuracy, exact canonical-SMILES reconstruction and validity (greedy decoding)."""
    if not examples:
        return {"token_acc": float("nan"), "exact": float("nan"), "valid": float("nan")}
    decoded = decode_latents(model, tokenizer, encode_examples(model, examples))
    exact = np.mean([d == e.smiles for d, e in zip(decoded, examples, strict=True)])
    valid = np.mean([d is not None for d in decoded])
    return {
        "token_acc": token_accuracy(model, examples),
        "exact": float(exact),
        "valid": float(valid),
        "n": len(examples),
    }


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation, which keeps norms typical of the latent distribution."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    omega = np.arccos(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def sample_prior(
    mean: torch.Tensor, chol: torch.Tensor, n: int, seed: int = 0, scale: float = 1.0
) -> np.ndarray:
    """Latents from the aggregate posterior, a Gaussian fitted to encoded training data."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n, mean.shape[0])).astype(np.float32)
    return mean.cpu().numpy() + scale * eps @ chol.cpu().numpy().T
