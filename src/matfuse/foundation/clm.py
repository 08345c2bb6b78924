"""An autoregressive chemical language model (``clm``): p(SMILES) token by token.

The contract other modules code against (REINVENT-family strategies, the SMC prior, the
``clm_loglik`` objective term):

* ``ChemicalLanguageModel.vocab`` is the token list (ids are positions; ids 0-4 are the
  special tokens of :mod:`matfuse.foundation.tokenizers`).
* ``model.sample(n, temperature=1.0, generator=g, max_length=128)`` returns ``n`` SMILES
  strings (they may be invalid) and their sequence log-likelihoods, shape ``(n,)``,
  differentiable when grad mode is on. The log-likelihood is log p under the model itself
  (temperature 1, whatever the sampling temperature), of the sampled tokens including the end
  token; a string cut at ``max_length`` scores only the tokens it has. This is what a policy
  gradient needs: the same value :meth:`log_likelihood` gives the string.
* ``model.log_likelihood(smiles)`` returns the exact log p of each string *as spelled*
  (score canonical SMILES for a per-molecule value; the model is trained on RDKit canonical
  SMILES), shape ``(n,)``, differentiable; ``-inf`` for a string the vocabulary cannot
  tokenise (or too long for a transformer's positions).
* :func:`load_clm` (shipped name or a model directory), :func:`save_clm` (``clm.json``
  config, ``vocab.json``, ``model.safetensors`` and a manifest; never pickle) and
  :func:`fit_clm` (small in-memory training, e.g. fine-tuning on a focused library).

Two architectures share the class: a GRU/LSTM (CharRNN-like, Segler et al. 2018) and a small
pre-norm decoder-only transformer; ``arch`` in :class:`CLMConfig` chooses. Sampling is
deterministic for a given ``torch.Generator`` seed.

>>> model = fit_clm(["CCO", "CCN", "c1ccccc1"] * 20, steps=30, seed=0)  # doctest: +SKIP
>>> smiles, logp = model.sample(4, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from torch import nn

from matfuse.foundation.autoencoder import pad_sequences
from matfuse.foundation.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    SmilesTokenizer,
    Tokenizer,
    canonical_smiles,
)

__all__ = [
    "ARCHITECTURES",
    "CLMConfig",
    "ChemicalLanguageModel",
    "clm_is_shipped",
    "fit_clm",
    "load_clm",
    "save_clm",
]

logger = logging.getLogger(__name__)

ARCHITECTURES = ("gru", "lstm", "transformer")
FORMAT_VERSION = 1
#: The manifest kind of a clm directory (checked before anything is loaded).
CLM_KIND = "matfuse.foundation.ChemicalLanguageModel"
#: The configuration file is ``clm.json``, not ``config.json``: the autoencoders' loaders (and
#: :func:`matfuse.foundation.weights.shipped_models`) take a directory with a ``config.json``
#: for one of theirs, and a language model must never be mistaken for an encoder.
CONFIG_FILE = "clm.json"
_OWNED = frozenset({CONFIG_FILE, "vocab.json", "model.safetensors", "MODEL_CARD.md"})
_UNLISTED = frozenset({"MODEL_CARD.md"})


@dataclass
class CLMConfig:
    """Architecture of a chemical language model (everything needed to rebuild it)."""

    arch: str = "gru"
    d_model: int = 256
    n_layers: int = 3
    dropout: float = 0.0
    #: transformer only: attention heads and the longest sequence it has positions for
    n_heads: int = 4
    max_positions: int = 160

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; choose from {', '.join(ARCHITECTURES)}")
        if self.arch == "transformer" and self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CLMConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# -- the transformer's blocks (with a key/value cache, so sampling is linear per token) -------
class _CausalBlock(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is not None:  # incremental decoding: attend to everything so far
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and t > 1)
        x = x + self.dropout(self.proj(attn.transpose(1, 2).reshape(b, t, d)))
        x = x + self.dropout(self.mlp(self.norm2(x)))
        return x, (k, v)


State = object  # an architecture's recurrent state (hidden tensors or a list of caches)


class ChemicalLanguageModel(nn.Module):
    """p(s) = prod_t p(s_t | s_<t) over SMILES tokens, by a recurrent net or a transformer."""

    def __init__(self, config: CLMConfig, tokenizer: Tokenizer) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.vocab: list[str] = list(tokenizer.tokens)
        v, d = len(self.vocab), config.d_model
        self.embed = nn.Embedding(v, d, padding_idx=PAD_ID)
        self.rnn: nn.GRU | nn.LSTM | None = None
        self.blocks = nn.ModuleList()
        if config.arch in ("gru", "lstm"):
            rnn_cls = nn.GRU if config.arch == "gru" else nn.LSTM
            self.rnn = rnn_cls(
                d,
                d,
                num_layers=config.n_layers,
                batch_first=True,
                dropout=config.dropout if config.n_layers > 1 else 0.0,
            )
        else:
            self.pos = nn.Embedding(config.max_positions, d)
            self.blocks.extend(
                _CausalBlock(d, config.n_heads, config.dropout) for _ in range(config.n_layers)
            )
            self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, v)
        # the model never emits padding, begin, unknown or mask: those logits are -inf in
        # training, scoring and sampling alike, so all three see the same distribution
        banned = torch.zeros(v)
        banned[[i for i in range(len(SPECIALS)) if i != EOS_ID]] = -math.inf
        self.register_buffer("logit_mask", banned, persistent=False)

    # -- the network ---------------------------------------------------------------------
    def forward(
        self, ids: torch.Tensor, state: State | None = None, offset: int = 0
    ) -> tuple[torch.Tensor, State]:
        """Logits (batch, time, vocab) of the next token after each input id, and the state.

        ``state``/``offset`` continue a sequence (sampling feeds one token at a time).
        """
        x = self.embed(ids)
        if self.rnn is not None:
            h, new_state = self.rnn(x, state)  # type: ignore[arg-type]
            return self.head(h) + self.logit_mask, new_state
        positions = torch.arange(offset, offset + ids.shape[1], device=ids.device)
        x = x + self.pos(positions)
        caches = state if isinstance(state, list) else [None] * len(self.blocks)
        new_caches = []
        for block, cache in zip(self.blocks, caches, strict=True):
            x, kv = block(x, cache)
            new_caches.append(kv)
        return self.head(self.norm(x)) + self.logit_mask, new_caches

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def token_log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """log p(ids[:, t+1] | ids[:, :t+1]) for every position, zero on padding: (B, T-1)."""
        logits, _ = self(ids[:, :-1])
        logp = torch.log_softmax(logits.float(), dim=-1)
        target = ids[:, 1:]
        picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return picked.masked_fill(target == PAD_ID, 0.0)

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token negative log-likelihood over the real (non-padding) tokens."""
        logits, _ = self(ids[:, :-1])
        return next_token_loss(logits, ids)

    # -- the published contract ------------------------------------------------------------
    def log_likelihood(self, smiles: Sequence[str]) -> torch.Tensor:
        """Exact log p of each string as spelled (``-inf`` when it cannot be tokenised)."""
        out = torch.full((len(smiles),), -math.inf, device=self.device)
        rows, seqs = [], []
        for i, s in enumerate(smiles):
            ids = self.token_ids(s)
            if ids is not None:
                rows.append(i)
                seqs.append(ids)
        if not rows:
            return out
        batch = pad_sequences(seqs).to(self.device)
        scores = self.token_log_probs(batch).sum(dim=1)
        return out.index_put((torch.tensor(rows, device=self.device),), scores)

    def token_ids(self, smiles: str) -> list[int] | None:
        """``[BOS, tokens..., EOS]`` of a string, or None when the vocabulary cannot spell it."""
        try:
            tokens = self.tokenizer.split(smiles)
        except ValueError:
            return None
        index = self.tokenizer.index
        if not tokens or any(t not in index or index[t] < len(SPECIALS) for t in tokens):
            return None
        if self.rnn is None and len(tokens) + 1 > self.config.max_positions:
            return None
        return [BOS_ID, *(index[t] for t in tokens), EOS_ID]

    def sample(
        self,
        n: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        max_length: int = 128,
    ) -> tuple[list[str], torch.Tensor]:
        """``n`` sampled strings and their log-likelihoods under the model (see module doc)."""
        token = torch.full((n, 1), BOS_ID, dtype=torch.long, device=self.device)
        ids, logp = self._generate(token, None, 0, temperature, generator, max_length)
        return [self.tokenizer.decode(row) for row in ids], logp

    def extend(
        self,
        prefixes: Sequence[Sequence[int]],
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        max_length: int = 128,
    ) -> tuple[list[str], torch.Tensor]:
        """Complete each prefix (token ids after ``<bos>``, at least one) by sampling.

        Returns the full strings and the log-likelihood of the *sampled continuation* only
        (add the prefix's own log p for the whole string). Prefixes of equal length are
        completed together; this is the move of an SMC particle (keep a prefix, resample
        the rest), as in iQSPR.
        """
        texts: list[str] = [""] * len(prefixes)
        logps = torch.zeros(len(prefixes), device=self.device)
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(prefixes):
            if not p:
                raise ValueError("every prefix needs at least one token")
            groups.setdefault(len(p), []).append(i)
        for length in sorted(groups):
            rows = groups[length]
            ids = torch.tensor(
                [[BOS_ID, *prefixes[i]] for i in rows], dtype=torch.long, device=self.device
            )
            _, state = self(ids[:, :-1])
            budget = max(1, max_length - length)
            out, logp = self._generate(ids[:, -1:], state, length, temperature, generator, budget)
            logps = logps.index_put((torch.tensor(rows, device=self.device),), logp)
            for i, row in zip(rows, out, strict=True):
                texts[i] = self.tokenizer.decode(list(prefixes[i]) + row)
        return texts, logps

    def _generate(
        self,
        token: torch.Tensor,
        state: State | None,
        offset: int,
        temperature: float,
        generator: torch.Generator | None,
        max_length: int,
    ) -> tuple[list[list[int]], torch.Tensor]:
        """Sample up to ``max_length`` tokens after ``token`` (its state given); ids and log p."""
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.rnn is None:
            max_length = min(max_length, self.config.max_positions - 1 - offset)
        n = token.shape[0]
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        total = torch.zeros(n, device=self.device)
        chosen: list[torch.Tensor] = []
        for t in range(max(0, max_length)):
            logits, state = self(token, state, offset=offset + t)
            logits = logits[:, -1].float()
            logp = torch.log_softmax(logits, dim=-1)
            probs = torch.softmax(logits.detach() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            nxt = nxt.masked_fill(done, PAD_ID)
            step = logp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1)
            total = total + step.masked_fill(done, 0.0)
            chosen.append(nxt)
            done = done | (nxt == EOS_ID)
            if bool(done.all()):
                break
            token = nxt.unsqueeze(-1)
        if not chosen:
            return [[] for _ in range(n)], total
        return torch.stack(chosen, dim=1).tolist(), total

    # -- convenience ------------------------------------------------------------------------
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` (from ``ids[:, :-1]``) against ``ids[:, 1:]``, padding ignored.

    Separate from :meth:`ChemicalLanguageModel.loss` so a data-parallel wrapper, which only
    wraps ``forward``, computes the same loss.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1), ignore_index=PAD_ID
    )


# -- persistence --------------------------------------------------------------------------
def save_clm(model: ChemicalLanguageModel, path: str | Path, meta: dict | None = None) -> Path:
    """Write a model directory: ``clm.json``, ``vocab.json``, ``model.safetensors``, manifest.

    Atomic (temporary directory, then rename), so a killed export never leaves half a model.
    """
    from matfuse.foundation.model_dir import state_tensors
    from matfuse.models.manifest import atomic_directory  # lazy: matfuse.models loads sklearn

    path = Path(path)
    config = {
        "format_version": FORMAT_VERSION,
        "kind": "clm",
        "architecture": model.config.to_dict(),
        "meta": meta or {},
    }
    with atomic_directory(path, CLM_KIND, owns=_OWNED.__contains__, ignore=_UNLISTED) as tmp:
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        model.tokenizer.save(tmp / "vocab.json")
        save_file(state_tensors(model), tmp / "model.safetensors")
    return path


def clm_dir(name_or_path: str | Path) -> Path:
    """A shipped model's name (``clm``) or a model directory, as a directory."""
    from matfuse.foundation.weights import weights_dir

    path = Path(name_or_path)
    if not path.exists() and isinstance(name_or_path, str) and "/" not in name_or_path:
        shipped = weights_dir(name_or_path)
        if (shipped / CONFIG_FILE).exists():
            return shipped
        raise FileNotFoundError(
            f"no language model {name_or_path!r}: not a directory and not shipped "
            f"(expected {shipped})"
        )
    return path


def load_clm(name_or_path: str | Path = "clm", device: str = "cpu") -> ChemicalLanguageModel:
    """The shipped weights (``"clm"``) or a directory :func:`save_clm` wrote, in eval mode.

    Every file is checked against the directory's manifest before it is parsed.
    """
    from matfuse.models.manifest import verify_manifest  # lazy: matfuse.models loads sklearn

    path = clm_dir(name_or_path)
    if not (path / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{path} is not a language model directory (no {CONFIG_FILE})")
    manifest = verify_manifest(path, CLM_KIND, ignore=_UNLISTED)
    config = manifest.read_json(CONFIG_FILE)
    tokenizer = Tokenizer.from_dict(manifest.read_json("vocab.json"))
    model = ChemicalLanguageModel(CLMConfig.from_dict(config["architecture"]), tokenizer)
    state = load_safetensors(manifest.read_bytes("model.safetensors"))
    model.load_state_dict(state)
    model.meta = config.get("meta", {})  # type: ignore[assignment]
    return model.to(device).eval()


def clm_meta(model: ChemicalLanguageModel) -> dict:
    """The training record a loaded model carries (empty for a model built in memory)."""
    meta = getattr(model, "meta", {})
    return meta if isinstance(meta, dict) else {}


# -- small in-memory training ---------------------------------------------------------------
def fit_clm(
    smiles: Sequence[str],
    *,
    arch: str = "gru",
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    d_model: int = 128,
    n_layers: int = 2,
    init: ChemicalLanguageModel | None = None,
    canonicalize: bool = True,
) -> ChemicalLanguageModel:
    """Train a small model on a list of SMILES in memory (tests, fine-tuning a focused library).

    With ``init`` the given model is copied and fine-tuned (its vocabulary is kept; molecules
    it cannot spell are skipped with a log line), otherwise a fresh model with a vocabulary
    fitted on ``smiles`` is trained. Deterministic for a given ``seed`` on one thread.
    Corpus-scale, resumable training is :mod:`matfuse.pretrain.clm`'s.
    """
    torch.manual_seed(seed)
    rows = [canonical_smiles(s) if canonicalize else s for s in smiles]
    clean = [s for s in rows if s]
    if init is not None:
        model = ChemicalLanguageModel(init.config, init.tokenizer)
        model.load_state_dict(init.state_dict())
        model.to(init.device)
    else:
        tokenizer = SmilesTokenizer().fit(clean)
        model = ChemicalLanguageModel(
            CLMConfig(arch=arch, d_model=d_model, n_layers=n_layers), tokenizer
        )
    seqs = [ids for ids in (model.token_ids(s) for s in clean) if ids is not None]
    if not seqs:
        raise ValueError("none of the molecules can be spelled by the model's vocabulary")
    if len(seqs) < len(smiles):
        logger.info("fit_clm: %d of %d molecules skipped", len(smiles) - len(seqs), len(smiles))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(seqs), (min(batch_size, len(seqs)),), generator=gen)
        batch = pad_sequences([seqs[int(i)] for i in idx]).to(model.device)
        for group in optimizer.param_groups:  # linear decay: stable ends on tiny corpora
            group["lr"] = lr * (1.0 - 0.9 * step / max(1, steps))
        loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model.eval()


def clm_is_shipped(name: str = "clm") -> bool:
    """Whether the language model ``name`` ships with this installation (its weights are in)."""
    from matfuse.foundation.weights import weights_dir

    return (weights_dir(name) / CONFIG_FILE).exists()
