"""Encoder–decoder foundation models with a fixed-size latent bottleneck.

Every model here has the same contract, whatever reads the molecule:

    molecule ──encoder──► states ──pool + project──► z (latent_dim) ──decoder──► string

The decoder is conditioned *only* on z (through a few memory vectors it cross-attends to), so
``decode(encode(x)) == x`` can be the training target and z is a complete description of the
molecule: usable as a feature vector for property models and as a search space for
generation. Encoders: a transformer (``ted``, as SMI-TED / SELFIES-TED), a bidirectional
selective state-space stack (``ssed``, as SMI-SSED) or a GIN over the molecular graph
(``ged``, as MHG-GED). The decoder is always a causal transformer over the output language.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from matfuse.foundation.graphs import MASKED_ELEMENT, GINEncoder, GraphBatch
from matfuse.foundation.ssm import MambaStack
from matfuse.foundation.tokenizers import BOS_ID, EOS_ID, MASK_ID, PAD_ID, SPECIALS

ENCODER_KINDS = ("ted", "ssed", "ged")


@dataclass
class ModelConfig:
    """Architecture of one foundation model (saved as JSON next to the weights)."""

    encoder: str = "ted"  # ted | ssed | ged
    language: str = "selfies"  # the decoder's (and sequence encoder's) string language
    d_model: int = 128
    n_heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    ff_mult: int = 2
    latent_dim: int = 128
    n_memory: int = 4
    max_len: int = 128
    dropout: float = 0.0
    d_state: int = 16

    def __post_init__(self) -> None:
        if self.encoder not in ENCODER_KINDS:
            raise ValueError(f"encoder must be one of {ENCODER_KINDS}, got {self.encoder!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Batch:
    """Decoder targets (always) plus what the encoder reads (tokens or a graph)."""

    tokens: torch.Tensor  # (b, t) ids, BOS ... EOS, right-padded with PAD
    graph: GraphBatch | None = None

    def to(self, device: torch.device | str) -> Batch:
        graph = self.graph.to(device) if self.graph is not None else None
        return Batch(self.tokens.to(device), graph)


def pad_sequences(seqs: list[list[int]]) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


class SequenceEncoder(nn.Module):
    """Token + position embeddings, then transformer or Mamba layers."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD_ID)
        self.pos = nn.Embedding(cfg.max_len, d)
        if cfg.encoder == "ted":
            layer = nn.TransformerEncoderLayer(
                d, cfg.n_heads, cfg.ff_mult * d, cfg.dropout, batch_first=True, norm_first=True
            )
            self.stack: nn.Module = nn.TransformerEncoder(
                layer, cfg.encoder_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
            )
        else:
            self.stack = MambaStack(d, cfg.encoder_layers, d_state=cfg.d_state)
        self.kind = cfg.encoder

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens != PAD_ID
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.pos(positions)
        if self.kind == "ted":
            return self.stack(x, src_key_padding_mask=~mask)
        return self.stack(x, mask)


class DecoderBlock(nn.Module):
    """Pre-norm transformer decoder layer with a key/value cache for fast generation."""

    def __init__(self, d: int, n_heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.self_out = nn.Linear(d, d)
        self.cross_q = nn.Linear(d, d)
        self.cross_kv = nn.Linear(d, 2 * d)
        self.cross_out = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        b, h, t, dh = x.shape
        return x.transpose(1, 2).reshape(b, t, h * dh)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.cross_kv(memory).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        q, k, v = (self._split(t) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        # a full sequence needs the causal mask; one new token may see the whole cache
        causal = q.shape[2] > 1
        att = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        x = x + self.drop(self.self_out(self._merge(att)))
        att = F.scaled_dot_product_attention(self._split(self.cross_q(self.norm2(x))), *memory_kv)
        x = x + self.drop(self.cross_out(self._merge(att)))
        return x + self.drop(self.ff(self.norm3(x)))


class LatentDecoder(nn.Module):
    """Causal transformer decoder that cross-attends only to memory vectors made from z."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_memory, self.d_model, self.max_len = cfg.n_memory, d, cfg.max_len
        self.memory = nn.Linear(cfg.latent_dim, cfg.n_memory * d)
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD_ID)
        self.pos = nn.Embedding(cfg.max_len, d)
        self.blocks = nn.ModuleList(
            DecoderBlock(d, cfg.n_heads, cfg.ff_mult * d, cfg.dropout)
            for _ in range(cfg.decoder_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab_size)

    def _memory_kv(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        memory = self.memory(z).view(z.shape[0], self.n_memory, self.d_model)
        # nn.ModuleList yields nn.Module to the type checker; every entry is a DecoderBlock
        return [cast(DecoderBlock, block).memory_kv(memory) for block in self.blocks]

    def forward(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits (b, t, vocab) for input tokens (b, t) given latents (b, latent)."""
        t = tokens.shape[1]
        x = self.embed(tokens) + self.pos(torch.arange(t, device=tokens.device))
        for block, mem in zip(self.blocks, self._memory_kv(z), strict=True):
            x = block(x, mem)
        return self.head(self.norm(x))

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        temperature: float = 0.0,
        max_len: int | None = None,
        generator: torch.Generator | None = None,
        first_allowed: list[int] | None = None,
    ) -> torch.Tensor:
        """Token ids (b, ≤ max_len) decoded from z; greedy when temperature is 0.

        ``first_allowed`` restricts the first token (SELFIES: atoms only, so that every
        output is a non-empty molecule).
        """
        max_len = min(max_len or self.max_len, self.max_len)
        b = z.shape[0]
        memories = self._memory_kv(z)
        caches: list[dict[str, torch.Tensor]] = [{} for _ in self.blocks]
        current = torch.full((b,), BOS_ID, dtype=torch.long, device=z.device)
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        banned = [i for i in range(len(SPECIALS)) if i != EOS_ID]
        out = []
        for t in range(max_len - 1):
            x = self.embed(current)[:, None] + self.pos.weight[t]
            for block, mem, cache in zip(self.blocks, memories, caches, strict=True):
                x = block(x, mem, cache)
            logits = self.head(self.norm(x[:, -1]))
            logits[:, banned] = float("-inf")
            if t == 0 and first_allowed is not None:
                first = torch.full_like(logits, float("-inf"))
                first[:, first_allowed] = 0.0
                logits = logits + first
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            else:
                nxt = logits.argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD_ID), nxt)
            out.append(nxt)
            done |= nxt == EOS_ID
            current = nxt
            if bool(done.all()):
                break
        return torch.stack(out, dim=1)


class MoleculeAutoencoder(nn.Module):
    """Encoder → pooled latent z → decoder, with a masked-prediction head on the encoder."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        if cfg.encoder == "ged":
            self.encoder: nn.Module = GINEncoder(d, cfg.encoder_layers)
            self.mask_head = nn.Linear(d, MASKED_ELEMENT)  # predicts the hidden element
        else:
            self.encoder = SequenceEncoder(cfg, vocab_size)
            self.mask_head = nn.Linear(d, vocab_size)  # masked-language-model head
        self.to_latent = nn.Linear(d, cfg.latent_dim)
        self.decoder = LatentDecoder(cfg, vocab_size)

    # -- encoding ------------------------------------------------------------------------
    def _states(self, batch: Batch, enc_tokens: torch.Tensor | None = None):
        if self.cfg.encoder == "ged":
            assert batch.graph is not None, "the graph encoder needs graphs"
            h = self.encoder(batch.graph)
            return h, GINEncoder.pool(h, batch.graph)
        tokens = batch.tokens if enc_tokens is None else enc_tokens
        h = self.encoder(tokens)
        mask = (tokens != PAD_ID).unsqueeze(-1).to(h.dtype)
        return h, (h * mask).sum(1) / mask.sum(1).clamp(min=1)

    def encode(self, batch: Batch) -> torch.Tensor:
        """Latent vectors (b, latent_dim)."""
        return self.to_latent(self._states(batch)[1])

    # -- training ------------------------------------------------------------------------
    def loss(
        self,
        batch: Batch,
        mask_prob: float = 0.1,
        mask_weight: float = 0.2,
        latent_noise: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Reconstruction loss from the latent, plus masked prediction on the encoder input.

        The encoder reads a corrupted input (masked tokens, or masked atom elements for the
        graph), so the latent must be robust, and the reconstruction target is the clean
        string: a denoising autoencoder with an MLM head. Gaussian noise on z during training
        makes neighbouring latents decode to similar molecules, which generation relies on.
        """
        tokens = batch.tokens
        if self.cfg.encoder == "ged":
            g = batch.graph
            assert g is not None
            hide = torch.rand(g.x.shape[0], device=g.x.device) < mask_prob
            truth = g.x[:, 0].clone()
            x = g.x.clone()
            x[hide, 0] = MASKED_ELEMENT
            graph = GraphBatch(x, g.edge_index, g.edge_attr, g.batch, g.n_graphs)
            h, pooled = self._states(Batch(tokens, graph))
            mask_logits, mask_truth = self.mask_head(h[hide]), truth[hide]
        else:
            maskable = tokens > MASK_ID  # real symbols only
            hide = maskable & (torch.rand(tokens.shape, device=tokens.device) < mask_prob)
            corrupted = tokens.masked_fill(hide, MASK_ID)
            h, pooled = self._states(batch, corrupted)
            mask_logits, mask_truth = self.mask_head(h[hide]), tokens[hide]
        z = self.to_latent(pooled)
        if latent_noise > 0:
            z = z + latent_noise * torch.randn_like(z)
        logits = self.decoder(z, tokens[:, :-1])
        target = tokens[:, 1:]
        recon = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD_ID
        )
        if mask_truth.numel():
            masked = F.cross_entropy(mask_logits, mask_truth)
        else:
            masked = recon.new_zeros(())
        with torch.no_grad():
            real = target != PAD_ID
            correct = (logits.argmax(-1) == target) & real
            token_acc = correct.sum() / real.sum().clamp(min=1)
            seq_acc = (correct | ~real).all(dim=1).float().mean()
        return {
            "loss": recon + mask_weight * masked,
            "recon": recon.detach(),
            "masked": masked.detach(),
            "token_acc": token_acc,
            "seq_acc": seq_acc,
        }
