"""Splitters for molecules: Bemis–Murcko scaffolds and Butina clusters stay whole.

A scaffold or cluster split measures transfer to new chemotypes, the question a medicinal
chemist asks of a model; both assign whole groups with the balanced order of chemprop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rdkit import Chem

from matfuse.chem.scaffolds import murcko_scaffold
from matfuse.chem.similarity import morgan_bitvect
from matfuse.evaluate.clustering import DEFAULT_MAX_EXACT, butina_clusters
from matfuse.evaluate.splitters.base import (
    Split,
    Splitter,
    assign_groups,
    balanced_order,
    check_fractions,
    groups_from_keys,
    make_split,
    register_splitter,
    split_counts,
)

__all__ = ["ClusterSplitter", "ScaffoldSplitter", "scaffold_overlap"]

SmilesLike = str | Chem.Mol | None


class ScaffoldSplitter(Splitter):
    """Bemis–Murcko scaffold split: no test scaffold occurs in train.

    ``balanced=False`` is the deterministic DeepChem variant (scaffold sets sorted by
    size, largest to train, the smallest and rarest end up in test; ``seed`` is unused).
    ``balanced=True`` is chemprop's: sets bigger than half the valid or test size go to
    train first, the rest are shuffled with ``seed``, so test is a random sample of
    small scaffold sets instead of always the rarest ones. All acyclic molecules share
    the empty scaffold and form one group. ``generic=True`` groups by generic frameworks.
    """

    name = "scaffold"
    needs = "molecule"

    def __init__(
        self,
        valid_size: float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        balanced: bool = True,
        generic: bool = False,
    ) -> None:
        check_fractions(valid_size, test_size)
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed
        self.balanced = balanced
        self.generic = generic

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        mols = batch.objects
        eligible = np.flatnonzero(batch.valid)
        scaffolds = [murcko_scaffold(mols[i], generic=self.generic) for i in eligible]
        # A scaffold failure (None) on a parsable molecule is its own singleton group.
        keys = [k if k is not None else ("__unscaffoldable__", i) for i, k in enumerate(scaffolds)]
        groups = groups_from_keys(eligible, keys)
        n_valid, n_test = split_counts(eligible.size, self.valid_size, self.test_size)
        if self.balanced:
            groups = balanced_order(groups, n_valid, n_test, np.random.default_rng(self.seed))
        else:
            groups = sorted(groups, key=lambda g: (-g.size, int(g[0])))
        valid, test = assign_groups(groups, eligible.size, n_valid, n_test)
        return make_split(len(mols), valid, test, self.name, n_scaffolds=len(groups))

    def describe(self, split: Split) -> str:
        kind = "generic Bemis-Murcko frameworks" if self.generic else "Bemis-Murcko scaffolds"
        order = "balanced" if self.balanced else "largest first"
        n = split.info.get("n_scaffolds")
        return self._held_out(split, f"whose {kind} never occur in train ({n} scaffolds, {order})")


class ClusterSplitter(Splitter):
    """Butina-cluster split on Morgan (r=2, 2048) Tanimoto distance; clusters stay whole.

    Harder than a scaffold split when series share a core with different ring systems
    (and vice versa). Clusters are ordered like chemprop's balanced scaffold split (big
    clusters to train, the rest shuffled with ``seed``). Above ``max_exact`` molecules,
    clustering uses the sample + leader approximation of
    :mod:`matfuse.evaluate.clustering` (reported in ``Split.info["clustering"]``).
    """

    name = "cluster"
    needs = "molecule"

    def __init__(
        self,
        valid_size: float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        cutoff: float = 0.6,
        max_exact: int = DEFAULT_MAX_EXACT,
    ) -> None:
        check_fractions(valid_size, test_size)
        if not 0.0 <= cutoff <= 1.0:
            raise ValueError(f"cutoff must be a Tanimoto distance in [0, 1], got {cutoff}")
        self.valid_size = valid_size
        self.test_size = test_size
        self.seed = seed
        self.cutoff = cutoff
        self.max_exact = max_exact

    def _split(self, batch: Any, y: np.ndarray | None) -> Split:
        mols = batch.objects
        eligible = np.flatnonzero(batch.valid)
        fps = []
        for i in eligible:
            fp = morgan_bitvect(mols[i])
            assert fp is not None  # a valid row is a parsed molecule, which has a fingerprint
            fps.append(fp)
        clustering = butina_clusters(fps, self.cutoff, max_exact=self.max_exact, seed=self.seed)
        groups = groups_from_keys(eligible, clustering.labels.tolist())
        n_valid, n_test = split_counts(eligible.size, self.valid_size, self.test_size)
        groups = balanced_order(groups, n_valid, n_test, np.random.default_rng(self.seed))
        valid, test = assign_groups(groups, eligible.size, n_valid, n_test)
        return make_split(
            len(mols),
            valid,
            test,
            self.name,
            n_clusters=clustering.n_clusters,
            clustering=clustering.method,
        )

    def describe(self, split: Split) -> str:
        n = split.info.get("n_clusters")
        return self._held_out(
            split,
            f"from Butina clusters (Tanimoto distance cutoff {self.cutoff}, {n} clusters) "
            "that never occur in train",
        )


def _items(smiles: Sequence[SmilesLike]) -> list[Any]:
    if isinstance(smiles, str):
        raise TypeError("smiles must be a sequence of SMILES, not a single string")
    return list(smiles)


def scaffold_overlap(
    train_smiles: Sequence[SmilesLike], test_smiles: Sequence[SmilesLike]
) -> float:
    """Fraction of test molecules with a ring scaffold whose scaffold also occurs in train.

    0.0 means the split is scaffold-disjoint; a random split typically gives well above
    0.5. Acyclic and invalid test molecules are not counted (the empty scaffold carries no
    chemotype information). NaN when no test molecule has a ring scaffold.
    """
    train_scaffolds = {s for s in (murcko_scaffold(x) for x in _items(train_smiles)) if s}
    test_scaffolds = [s for s in (murcko_scaffold(x) for x in _items(test_smiles)) if s]
    if not test_scaffolds:
        return float("nan")
    return sum(s in train_scaffolds for s in test_scaffolds) / len(test_scaffolds)


for _cls in (ScaffoldSplitter, ClusterSplitter):
    register_splitter(_cls)
