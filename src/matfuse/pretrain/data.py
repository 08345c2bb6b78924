"""Streaming, deterministic, length-bucketed batches from a SMILES corpus.

The corpus is read in fixed-size chunks, so memory stays flat however large the file. Within
a chunk, molecules are sorted by token length (with a random tie-break) and cut into
batches, which keeps padding low, and the batch order is shuffled. Every random choice is
seeded by ``(seed, epoch, chunk)``, so a run interrupted at (epoch, chunk, batch) resumes on
exactly the batches it would have seen.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from matfuse.chem.standardize import quiet_rdkit
from matfuse.foundation.autoencoder import Batch
from matfuse.foundation.examples import Example, collate, make_examples
from matfuse.foundation.tokenizers import Tokenizer


def _smiles_column(columns: list[str]) -> str:
    for c in columns:
        if str(c).lower() in ("smiles", "smi", "canonical_smiles"):
            return c
    return columns[0]


def _looks_headerless(path: Path) -> bool:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        first = fh.readline().strip().split(",")[0].split()[0] if fh else ""
    with quiet_rdkit():
        return Chem.MolFromSmiles(first) is not None and first.lower() != "smiles"


def iter_corpus_chunks(path: str | Path, chunk_size: int) -> Iterator[list[str]]:
    """SMILES strings of a corpus file, chunk by chunk.

    Reads ``.smi``/``.txt`` (one SMILES per line, first whitespace field) and ``.csv``/``.tsv``
    with a SMILES column, optionally gzipped.
    """
    path = Path(path)
    stem_suffix = Path(path.stem).suffix if path.suffix == ".gz" else path.suffix
    if stem_suffix in (".csv", ".tsv"):
        sep = "\t" if stem_suffix == ".tsv" else ","
        header = None if _looks_headerless(path) else "infer"
        reader = pd.read_csv(path, sep=sep, chunksize=chunk_size, header=header, dtype=str)
        for frame in reader:
            col = _smiles_column(list(frame.columns))
            yield [str(s) for s in frame[col].fillna("")]
    else:
        opener = gzip.open if path.suffix == ".gz" else open
        chunk: list[str] = []
        with opener(path, "rt") as fh:
            for line in fh:
                fields = line.split()
                if not fields or fields[0].lower() == "smiles":
                    continue
                chunk.append(fields[0])
                if len(chunk) == chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def read_corpus(path: str | Path, limit: int | None = None) -> list[str]:
    """The first ``limit`` SMILES of a corpus (all when None)."""
    out: list[str] = []
    for chunk in iter_corpus_chunks(path, 50_000):
        out += chunk
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


@dataclass
class StreamPosition:
    """Where a run is in its data: epoch, chunk within the epoch, batch within the chunk."""

    epoch: int = 0
    chunk: int = 0
    batch: int = 0


class CorpusStream:
    """Yields (position, batch) pairs forever, epoch after epoch, deterministically."""

    def __init__(
        self,
        path: str | Path,
        tokenizer: Tokenizer,
        batch_size: int,
        max_len: int,
        graph: bool = False,
        chunk_size: int = 20_000,
        skip_first: int = 0,
        seed: int = 0,
    ) -> None:
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_len = max_len
        self.graph = graph
        self.chunk_size = chunk_size
        self.skip_first = skip_first
        self.seed = seed

    def _chunks(self) -> Iterator[list[str]]:
        """Training chunks: the corpus minus its first ``skip_first`` rows (held out)."""
        skip = self.skip_first
        for chunk in iter_corpus_chunks(self.path, self.chunk_size):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0

    def _batches(self, examples: list[Example], epoch: int, chunk: int) -> list[list[Example]]:
        rng = np.random.default_rng([self.seed, epoch, chunk])
        lengths = np.array([len(e.ids) for e in examples])
        order = np.lexsort((rng.random(len(examples)), lengths))
        groups = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng.shuffle(groups)  # type: ignore[arg-type]
        return [[examples[i] for i in g] for g in groups]

    def __call__(
        self, start: StreamPosition | None = None
    ) -> Iterator[tuple[StreamPosition, Batch]]:
        pos = start or StreamPosition()
        epoch = pos.epoch
        while True:
            seen_any = False
            for c, smiles in enumerate(self._chunks()):
                if epoch == pos.epoch and c < pos.chunk:
                    continue  # resuming: skip chunks already trained on, without parsing
                examples = make_examples(smiles, self.tokenizer, self.max_len, self.graph)
                first = pos.batch if (epoch == pos.epoch and c == pos.chunk) else 0
                for b, group in enumerate(self._batches(examples, epoch, c)):
                    seen_any = True
                    if b < first:
                        continue
                    # the position stored is the *next* batch to train on
                    yield StreamPosition(epoch, c, b + 1), collate(group)
            if not seen_any:
                raise ValueError(f"corpus {self.path} has no usable molecules after hold-out")
            epoch += 1
