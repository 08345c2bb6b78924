"""An n-gram language model over SELFIES tokens: the chemical prior of iQSPR-style design.

Ikebata et al. (2017) used an n-gram model of SMILES strings as the prior p(S) and proposed new
molecules by re-sampling part of a string from it. Over SELFIES every token sequence decodes to
a valid molecule, so the same prior never wastes an oracle call on an invalid string. Counts
are kept for every context length up to ``order - 1`` and sampling backs off to the longest
context seen in training ("stupid backoff" without the discount: we only sample, never score).

Saved as plain JSON (no pickle)::

    m = SelfiesNGram(order=4).fit(smiles)
    m.save("ngram.json"); m = SelfiesNGram.load("ngram.json")
    tokens = m.sample_tokens(rng)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import selfies as sf
from rdkit import Chem
from rdkit.rdBase import BlockLogs

__all__ = ["BOS", "EOS", "SelfiesNGram", "selfies_tokens", "tokens_to_smiles"]

BOS = "<s>"
EOS = "</s>"
FORMAT = "matfuse.SelfiesNGram"


def selfies_tokens(smiles: str) -> list[str] | None:
    """SELFIES tokens of a SMILES string, or None if SELFIES cannot encode it."""
    try:
        encoded = sf.encoder(smiles)
    except Exception:  # selfies raises EncoderError and friends on unsupported input
        return None
    if not encoded:
        return None
    return list(sf.split_selfies(encoded))


def tokens_to_smiles(tokens: Sequence[str]) -> str | None:
    """Decode SELFIES tokens to canonical SMILES (None if they decode to nothing).

    Radicals are capped with hydrogens: a token with an explicit H count (``[CH1]``, ``[NH1]``)
    re-sampled into a context with fewer bonds decodes to an open-shell atom, which is valid
    SELFIES but not a molecule anyone would make.
    """
    try:
        smiles = sf.decoder("".join(tokens))
    except Exception:  # pragma: no cover - decoder is total on valid tokens
        return None
    if not smiles:
        return None
    block = BlockLogs()
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
            for atom in mol.GetAtoms():
                if atom.GetNumRadicalElectrons():
                    atom.SetNumRadicalElectrons(0)
                    atom.SetNoImplicit(False)
            Chem.SanitizeMol(mol)
        return Chem.MolToSmiles(mol) or None
    except Exception:  # sanitisation after capping can fail on exotic valences
        return None
    finally:
        del block


class SelfiesNGram:
    """Counts of next SELFIES token given the previous ``order - 1`` tokens."""

    def __init__(self, order: int = 4, max_len: int = 120) -> None:
        if order < 2:
            raise ValueError("an n-gram model needs order >= 2")
        self.order = int(order)
        self.max_len = int(max_len)
        self.counts_: dict[str, dict[str, int]] = {}
        self.n_molecules_ = 0
        self._cache: dict[str, tuple[list[str], np.ndarray]] = {}

    # -- fitting and persistence ----------------------------------------------------
    def fit(self, smiles: Iterable[str]) -> SelfiesNGram:
        """Count n-grams of the SELFIES of each molecule (unencodable ones are skipped)."""
        counts: dict[str, dict[str, int]] = {}
        n = 0
        for smi in smiles:
            tokens = selfies_tokens(smi)
            if tokens is None:
                continue
            n += 1
            seq = [BOS] * (self.order - 1) + tokens + [EOS]
            for i in range(self.order - 1, len(seq)):
                nxt = seq[i]
                for k in range(self.order):
                    ctx = "".join(seq[i - k : i])
                    row = counts.setdefault(ctx, {})
                    row[nxt] = row.get(nxt, 0) + 1
        if n == 0:
            raise ValueError("no molecule in the corpus could be encoded as SELFIES")
        self.counts_ = counts
        self.n_molecules_ = n
        self._cache = {}
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "order": self.order,
            "max_len": self.max_len,
            "n_molecules": self.n_molecules_,
            "counts": {k: dict(sorted(v.items())) for k, v in sorted(self.counts_.items())},
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelfiesNGram:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format={data.get('format')!r})")
        model = cls(order=int(data["order"]), max_len=int(data.get("max_len", 120)))
        model.counts_ = {
            str(k): {str(t): int(c) for t, c in v.items()} for k, v in data["counts"].items()
        }
        model.n_molecules_ = int(data.get("n_molecules", 0))
        return model

    @classmethod
    def load(cls, path: str | Path) -> SelfiesNGram:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- sampling -------------------------------------------------------------------
    def _distribution(self, history: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Next-token tokens and cumulative probabilities, backing off to shorter contexts."""
        for k in range(self.order - 1, -1, -1):
            ctx = "".join(history[len(history) - k :]) if k else ""
            if ctx in self.counts_:
                if ctx not in self._cache:
                    row = self.counts_[ctx]
                    tokens = sorted(row)
                    cum = np.cumsum([row[t] for t in tokens], dtype=float)
                    self._cache[ctx] = (tokens, cum / cum[-1])
                return self._cache[ctx]
        raise RuntimeError("the n-gram model is not fitted")

    def _extend(
        self, history: list[str], rng: np.random.Generator, n_tokens: int | None
    ) -> list[str]:
        """Sample tokens after ``history`` (which starts with BOS padding) until EOS."""
        out: list[str] = []
        limit = self.max_len if n_tokens is None else n_tokens
        while len(out) < limit:
            tokens, cum = self._distribution(history)
            tok = tokens[
                min(int(np.searchsorted(cum, rng.random(), side="right")), len(tokens) - 1)
            ]
            if tok == EOS:
                break
            out.append(tok)
            history.append(tok)
        return out

    def sample_tokens(self, rng: np.random.Generator, prefix: Sequence[str] = ()) -> list[str]:
        """A whole molecule's tokens, optionally continuing ``prefix``."""
        history = [BOS] * (self.order - 1) + list(prefix)
        return list(prefix) + self._extend(history, rng, None)

    def sample(self, n: int, rng: np.random.Generator) -> list[list[str]]:
        return [self.sample_tokens(rng) for _ in range(n)]

    def mutate(self, tokens: Sequence[str], rng: np.random.Generator) -> list[str]:
        """Re-sample a suffix (half the time) or a short segment of the token string.

        Suffix re-sampling is iQSPR's move; segment re-sampling keeps the tail, which makes
        smaller steps (local search around a good molecule).
        """
        tokens = list(tokens)
        if not tokens:
            return self.sample_tokens(rng)
        cut = int(rng.integers(0, len(tokens)))
        if rng.random() < 0.5:
            return self.sample_tokens(rng, tokens[:cut])
        span = int(rng.integers(1, 5))
        history = [BOS] * (self.order - 1) + tokens[:cut]
        middle = self._extend(history, rng, span)
        return (tokens[:cut] + middle + tokens[cut + span :])[: self.max_len]
