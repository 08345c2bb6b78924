"""Tokenisers for chemical language models: SMILES (atom-level regex) and SELFIES symbols.

The vocabulary is built from a corpus and saved with the model, so that a shipped checkpoint
always decodes with the tokens it was trained on. Four special tokens come first and their
ids are fixed: padding 0, begin 1, end 2, unknown 3, mask 4.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import selfies as sf
from rdkit import Chem

from matfuse.chem.standardize import quiet_rdkit

PAD, BOS, EOS, UNK, MASK = "<pad>", "<bos>", "<eos>", "<unk>", "<mask>"
SPECIALS = [PAD, BOS, EOS, UNK, MASK]
PAD_ID, BOS_ID, EOS_ID, UNK_ID, MASK_ID = range(5)

#: The atom-level SMILES regex of the Molecular Transformer (Schwaller et al. 2019).
SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$"
    r"|\%[0-9]{2}|[0-9])"
)


def smiles_tokens(smiles: str) -> list[str]:
    """Split a SMILES string into atom-level tokens; raise if characters are left over.

    >>> smiles_tokens("c1ccccc1Br")
    ['c', '1', 'c', 'c', 'c', 'c', 'c', '1', 'Br']
    """
    tokens = SMILES_REGEX.findall(smiles)
    if "".join(tokens) != smiles:
        raise ValueError(f"SMILES {smiles!r} has characters the tokeniser does not know")
    return tokens


class Tokenizer:
    """Maps molecules to token ids and back. Subclasses define the string language."""

    kind: ClassVar[str] = "base"

    def __init__(self, tokens: list[str] | None = None) -> None:
        self._set_vocabulary(list(SPECIALS) if tokens is None else list(tokens))

    def _set_vocabulary(self, tokens: list[str]) -> None:
        if tokens[: len(SPECIALS)] != SPECIALS:
            raise ValueError("vocabulary must start with the special tokens " + ", ".join(SPECIALS))
        self.tokens: list[str] = tokens
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    # -- the string language -------------------------------------------------------------
    def to_string(self, smiles: str) -> str:
        """The model's string for a (canonical) SMILES."""
        raise NotImplementedError  # pragma: no cover - abstract

    def split(self, string: str) -> list[str]:
        raise NotImplementedError  # pragma: no cover - abstract

    def to_smiles(self, string: str) -> str | None:
        """Canonical SMILES of a model string, or None when it is not a molecule."""
        raise NotImplementedError  # pragma: no cover - abstract

    # -- ids -----------------------------------------------------------------------------
    def fit(self, smiles: Iterable[str], min_count: int = 1) -> Tokenizer:
        """Build the vocabulary from a corpus of SMILES (rows that fail are skipped)."""
        counts: Counter[str] = Counter()
        for smi in smiles:
            try:
                counts.update(self.split(self.to_string(smi)))
            except Exception:  # noqa: BLE001 - a corpus row the language cannot express
                continue
        learned = sorted(t for t, c in counts.items() if c >= min_count and t not in SPECIALS)
        self._set_vocabulary(list(SPECIALS) + learned)
        return self

    def encode(self, smiles: str) -> list[int]:
        """Token ids of a SMILES, wrapped in begin/end tokens."""
        ids = [self.index.get(t, UNK_ID) for t in self.split(self.to_string(smiles))]
        return [BOS_ID, *ids, EOS_ID]

    def first_token_ids(self) -> list[int]:
        """Ids a string may start with (all real tokens unless the language says otherwise)."""
        return list(range(len(SPECIALS), len(self.tokens)))

    def decode(self, ids: Iterable[int]) -> str:
        """The model string spelled by ids, stopping at the end token, skipping specials."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i < len(SPECIALS) or i >= len(self.tokens):
                continue
            out.append(self.tokens[i])
        return "".join(out)

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @staticmethod
    def from_dict(data: dict) -> Tokenizer:
        cls = TOKENIZERS[data["kind"]]
        return cls(list(data["tokens"]))

    @staticmethod
    def load(path: str | Path) -> Tokenizer:
        return Tokenizer.from_dict(json.loads(Path(path).read_text()))


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES, or None for a string that is not a molecule."""
    if not smiles:
        return None
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


class SmilesTokenizer(Tokenizer):
    """Canonical SMILES, split with the Molecular Transformer regex."""

    kind: ClassVar[str] = "smiles"

    def to_string(self, smiles: str) -> str:
        return smiles

    def split(self, string: str) -> list[str]:
        return smiles_tokens(string)

    def to_smiles(self, string: str) -> str | None:
        return canonical_smiles(string)


class SelfiesTokenizer(Tokenizer):
    """SELFIES symbols (Krenn et al. 2020): every symbol sequence decodes to a molecule."""

    kind: ClassVar[str] = "selfies"

    def to_string(self, smiles: str) -> str:
        return sf.encoder(smiles, strict=True)

    def first_token_ids(self) -> list[int]:
        """Only atom symbols: a string that starts with one always spells a non-empty molecule,
        which is what makes decoded SELFIES valid in every case."""
        return [
            i
            for i, t in enumerate(self.tokens)
            if i >= len(SPECIALS) and "Branch" not in t and "Ring" not in t and t != "[nop]"
        ]

    def split(self, string: str) -> list[str]:
        return list(sf.split_selfies(string))

    def to_smiles(self, string: str) -> str | None:
        try:
            smiles = sf.decoder(string)
        except Exception:  # noqa: BLE001 - selfies raises several error types
            return None
        return canonical_smiles(smiles) if smiles else None


TOKENIZERS: dict[str, type[Tokenizer]] = {
    SmilesTokenizer.kind: SmilesTokenizer,
    SelfiesTokenizer.kind: SelfiesTokenizer,
}


def make_tokenizer(kind: str) -> Tokenizer:
    """An empty tokeniser of a language (``smiles`` or ``selfies``)."""
    if kind not in TOKENIZERS:
        raise KeyError(f"unknown tokeniser {kind!r}; known: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind]()
