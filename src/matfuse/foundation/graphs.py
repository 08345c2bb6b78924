"""Molecular graphs for the GNN encoder: RDKit featurisation and a GIN in plain PyTorch.

Atoms and bonds are described by small categorical features (element, degree, charge,
hydrogens, aromaticity, ring membership, hybridisation; bond order, conjugation, ring), each
embedded and summed. Message passing is GIN with edge features (Hu et al. 2020, the
architecture behind "Strategies for Pre-training GNNs"), which is what attribute masking was
designed for. No torch-geometric needed: neighbours are summed with ``index_add_``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rdkit import Chem
from torch import nn

ELEMENTS = ["C", "N", "O", "F", "P", "S", "Cl", "Br", "I", "B", "Si", "Se", "other"]
#: Element class used to hide an atom's identity in attribute masking.
MASKED_ELEMENT = len(ELEMENTS)
HYBRIDIZATIONS = [
    Chem.HybridizationType.S,
    Chem.HybridizationType.SP,
    Chem.HybridizationType.SP2,
    Chem.HybridizationType.SP3,
    Chem.HybridizationType.SP3D,
    Chem.HybridizationType.SP3D2,
]
#: Number of categories of each atom feature column (element includes the mask class).
ATOM_FEATURE_SIZES = [len(ELEMENTS) + 1, 7, 5, 5, 2, 2, len(HYBRIDIZATIONS) + 1]
BOND_TYPES = [
    Chem.BondType.SINGLE,
    Chem.BondType.DOUBLE,
    Chem.BondType.TRIPLE,
    Chem.BondType.AROMATIC,
]
BOND_FEATURE_SIZES = [len(BOND_TYPES) + 1, 2, 2]


def _index(value: object, options: list, other: int) -> int:
    return options.index(value) if value in options else other


def atom_features(atom: Chem.Atom) -> list[int]:
    return [
        _index(atom.GetSymbol(), ELEMENTS, len(ELEMENTS) - 1),
        min(atom.GetDegree(), 6),
        min(max(atom.GetFormalCharge(), -2), 2) + 2,
        min(atom.GetTotalNumHs(), 4),
        int(atom.GetIsAromatic()),
        int(atom.IsInRing()),
        _index(atom.GetHybridization(), HYBRIDIZATIONS, len(HYBRIDIZATIONS)),
    ]


def bond_features(bond: Chem.Bond) -> list[int]:
    return [
        _index(bond.GetBondType(), BOND_TYPES, len(BOND_TYPES)),
        int(bond.GetIsConjugated()),
        int(bond.IsInRing()),
    ]


@dataclass
class MolGraph:
    """One molecule as integer feature arrays (edges stored in both directions)."""

    atoms: list[list[int]]
    edges: list[tuple[int, int]]
    bonds: list[list[int]]


def mol_to_graph(mol: Chem.Mol) -> MolGraph:
    atoms = [atom_features(a) for a in mol.GetAtoms()]
    edges: list[tuple[int, int]] = []
    bonds: list[list[int]] = []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        feats = bond_features(bond)
        edges += [(i, j), (j, i)]
        bonds += [feats, feats]
    return MolGraph(atoms, edges, bonds)


@dataclass
class GraphBatch:
    """Several graphs glued into one disconnected graph, with a graph id per atom."""

    x: torch.Tensor  # (n_atoms, n_atom_features) long
    edge_index: torch.Tensor  # (2, n_edges) long
    edge_attr: torch.Tensor  # (n_edges, n_bond_features) long
    batch: torch.Tensor  # (n_atoms,) long
    n_graphs: int

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(
            self.x.to(device),
            self.edge_index.to(device),
            self.edge_attr.to(device),
            self.batch.to(device),
            self.n_graphs,
        )


def collate_graphs(graphs: list[MolGraph]) -> GraphBatch:
    xs, edges, attrs, ids = [], [], [], []
    offset = 0
    for g_id, g in enumerate(graphs):
        xs += g.atoms
        edges += [(i + offset, j + offset) for i, j in g.edges]
        attrs += g.bonds
        ids += [g_id] * len(g.atoms)
        offset += len(g.atoms)
    n_bond = len(BOND_FEATURE_SIZES)
    return GraphBatch(
        x=torch.tensor(xs, dtype=torch.long).reshape(-1, len(ATOM_FEATURE_SIZES)),
        edge_index=torch.tensor(edges, dtype=torch.long).reshape(-1, 2).T.contiguous(),
        edge_attr=torch.tensor(attrs, dtype=torch.long).reshape(-1, n_bond),
        batch=torch.tensor(ids, dtype=torch.long),
        n_graphs=len(graphs),
    )


class CategoricalEmbedding(nn.Module):
    """Sum of one embedding per categorical feature column."""

    def __init__(self, sizes: list[int], dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(s, dim) for s in sizes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return sum(table(feats[:, k]) for k, table in enumerate(self.tables))


class GINLayer(nn.Module):
    """h_i ← h_i + MLP((1 + ε) h_i + Σ_j ReLU(h_j + e_ij)), with layer norm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bond = CategoricalEmbedding(BOND_FEATURE_SIZES, dim)
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, g: GraphBatch) -> torch.Tensor:
        src, dst = g.edge_index
        messages = torch.relu(h[src] + self.bond(g.edge_attr))
        agg = torch.zeros_like(h).index_add_(0, dst, messages)
        return h + self.mlp(self.norm((1 + self.eps) * h + agg))


class GINEncoder(nn.Module):
    """Atom embeddings after ``n_layers`` rounds of message passing, plus graph pooling."""

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.atom = CategoricalEmbedding(ATOM_FEATURE_SIZES, dim)
        self.layers = nn.ModuleList(GINLayer(dim) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        h = self.atom(g.x)
        for layer in self.layers:
            h = layer(h, g)
        return self.norm(h)

    @staticmethod
    def pool(h: torch.Tensor, g: GraphBatch) -> torch.Tensor:
        """Mean over the atoms of each graph."""
        total = h.new_zeros(g.n_graphs, h.shape[1]).index_add_(0, g.batch, h)
        counts = torch.bincount(g.batch, minlength=g.n_graphs).clamp(min=1).unsqueeze(1)
        return total / counts.to(h.dtype)
