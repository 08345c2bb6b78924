"""Deterministic, length-bucketed batches from a SMILES corpus, shuffled across the corpus.

Public corpora are often stored in a meaningful order (MOSES train drifts from 10 to 7
aromatic carbons per molecule from its first rows to its last, as ZINC was enumerated), and a
model trained on them in file order follows the drift: its loss on recent batches falls while
its loss on a fixed held-out set rises. So by default (``order="shuffled"``) the corpus's
SMILES strings are read once into memory (about 100 bytes a molecule: 1.6 M MOSES molecules
take ~150 MB), the held-out rows are a seeded random sample, and every epoch visits the other
rows in a new seeded permutation. Corpora larger than :data:`SHUFFLE_MAX_BYTES` on disk are
streamed in file order instead (memory stays flat; shuffle such a file once beforehand, e.g.
``shuf``), with a warning. ``order="file"`` is the older behaviour, kept so that runs started
with it resume exactly; its held-out rows are the first ``n_heldout``.

The rows of an epoch are cut into chunks of ``chunk_size``; within a chunk, molecules are
sorted by token length (with a random tie-break) and cut into batches, which keeps padding
low, and the batch order is shuffled. Every random choice is seeded by ``(seed, epoch,
chunk)``, so a run interrupted at (epoch, chunk, batch) resumes on exactly the batches it
would have seen.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from rdkit import Chem

from matfuse.chem.standardize import quiet_rdkit
from matfuse.foundation.autoencoder import Batch
from matfuse.foundation.examples import Example, collate, make_examples
from matfuse.foundation.tokenizers import Tokenizer

logger = logging.getLogger(__name__)

StreamOrder = Literal["shuffled", "file"]
STREAM_ORDERS: tuple[str, ...] = ("shuffled", "file")
#: corpora larger than this on disk are streamed in file order rather than read into memory
SHUFFLE_MAX_BYTES = 2 << 30


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


def heldout_description(train: dict) -> str:
    """How a run's held-out rows were chosen (from its saved training settings), for cards."""
    if train.get("stream_order", "file") == "file":
        return f"the first {train['n_heldout']} rows (file order)"
    return f"{train['n_heldout']} random rows (seed {train['seed']}; training rows shuffled)"


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
        n_heldout: int = 0,
        seed: int = 0,
        order: StreamOrder = "shuffled",
    ) -> None:
        if order not in STREAM_ORDERS:
            raise ValueError(f"order must be one of {STREAM_ORDERS}, got {order!r}")
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_len = max_len
        self.graph = graph
        self.chunk_size = chunk_size
        self.n_heldout = n_heldout
        self.seed = seed
        self.order: StreamOrder = order
        if order == "shuffled" and self.path.stat().st_size > SHUFFLE_MAX_BYTES:
            logger.warning(
                "%s is larger than %.0f GB: streaming it in file order (shuffle it once "
                "beforehand, or the model follows whatever order the file has)",
                self.path,
                SHUFFLE_MAX_BYTES / 1e9,
            )
            self.order = "file"
        self._rows: list[str] | None = None
        self._heldout_idx: np.ndarray | None = None
        self._train_idx: np.ndarray | None = None

    def _split(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """All rows (read once), the held-out row indices and the training row indices."""
        if self._rows is None:
            self._rows = read_corpus(self.path)
            perm = np.random.default_rng([self.seed, 104_729]).permutation(len(self._rows))
            self._heldout_idx = np.sort(perm[: self.n_heldout])
            self._train_idx = np.sort(perm[self.n_heldout :])
        assert self._heldout_idx is not None and self._train_idx is not None
        return self._rows, self._heldout_idx, self._train_idx

    def heldout(self) -> list[str]:
        """The held-out SMILES, never trained on: a seeded random sample (file order: the
        first ``n_heldout`` rows)."""
        if self.order == "file":
            return read_corpus(self.path, limit=self.n_heldout) if self.n_heldout else []
        rows, heldout, _ = self._split()
        return [rows[i] for i in heldout]

    def chunks(self, epoch: int = 0) -> Iterator[list[str]]:
        """The training rows of ``epoch`` (the corpus minus the held-out rows), chunk by chunk."""
        if self.order == "shuffled":
            rows, _, train = self._split()
            order = np.random.default_rng([self.seed, epoch]).permutation(train)
            for start in range(0, len(order), self.chunk_size):
                yield [rows[i] for i in order[start : start + self.chunk_size]]
            return
        skip = self.n_heldout
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
            for c, smiles in enumerate(self.chunks(epoch)):
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
