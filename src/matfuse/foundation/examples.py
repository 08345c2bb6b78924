"""Molecules as model inputs: canonical SMILES, token ids and (for the GIN encoder) a graph.

Shared by inference (encoding the molecules a user passes) and by the pretraining loop
(:mod:`matfuse.pretrain.data` streams a corpus into batches of these).
"""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem

from matfuse.chem.standardize import quiet_rdkit
from matfuse.foundation.autoencoder import Batch, pad_sequences
from matfuse.foundation.graphs import MolGraph, collate_graphs, mol_to_graph
from matfuse.foundation.tokenizers import Tokenizer


@dataclass
class Example:
    """One molecule as a model reads it: canonical SMILES, token ids and (GNNs) its graph."""

    smiles: str
    ids: list[int]
    graph: MolGraph | None = None


def make_example(smiles: str, tokenizer: Tokenizer, max_len: int, graph: bool) -> Example | None:
    """Tokenise one molecule; None when it cannot be parsed, spelled or is too long."""
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    canonical = Chem.MolToSmiles(mol)
    try:
        ids = tokenizer.encode(canonical)
    except Exception:  # noqa: BLE001 - a molecule the language cannot express
        return None
    if len(ids) > max_len:
        return None
    return Example(canonical, ids, mol_to_graph(mol) if graph else None)


def make_examples(
    smiles: list[str], tokenizer: Tokenizer, max_len: int, graph: bool
) -> list[Example]:
    out = [make_example(s, tokenizer, max_len, graph) for s in smiles]
    return [e for e in out if e is not None]


def collate(examples: list[Example]) -> Batch:
    tokens = pad_sequences([e.ids for e in examples])
    graphs = [e.graph for e in examples]
    graph = collate_graphs(graphs) if all(g is not None for g in graphs) else None  # type: ignore[arg-type]
    return Batch(tokens, graph)
