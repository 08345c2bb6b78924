"""Butina clustering: identical to RDKit's reference, and a sane approximation above."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import DataStructs
from rdkit.ML.Cluster import Butina

from matfuse.chem.similarity import morgan_bitvects
from matfuse.evaluate.clustering import butina_clusters


def _rdkit_butina(fps, cutoff):
    dists = []
    for i in range(1, len(fps)):
        dists.extend(1.0 - np.asarray(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])))
    return Butina.ClusterData(dists, len(fps), cutoff, isDistData=True)


@pytest.mark.parametrize("cutoff", [0.35, 0.6, 0.8])
def test_exact_butina_matches_rdkit_reference(mixed_smiles, cutoff):
    fps = morgan_bitvects(mixed_smiles)
    ours = butina_clusters(fps, cutoff)
    ref = _rdkit_butina(fps, cutoff)
    assert ours.method == "butina"
    assert [tuple(m.tolist()) for m in ours.members()] == [tuple(c) for c in ref]


def test_series_form_one_cluster_each(series):
    smiles, letters = series
    labels = butina_clusters(morgan_bitvects(smiles), 0.6).labels
    for letter in set(letters):
        assert len({labels[i] for i, x in enumerate(letters) if x == letter}) == 1
    assert len(set(labels.tolist())) == 4


def test_approximation_keeps_members_within_cutoff_of_their_centroid(mixed_smiles):
    fps = morgan_bitvects(mixed_smiles)
    cl = butina_clusters(fps, 0.6, max_exact=15, seed=1)
    assert cl.method == "butina-sample+leader"
    assert cl.labels.min() == 0 and cl.labels.max() == cl.n_clusters - 1
    for c, centroid in enumerate(cl.centroids):
        members = np.flatnonzero(cl.labels == c)
        sims = DataStructs.BulkTanimotoSimilarity(fps[centroid], [fps[i] for i in members])
        assert min(sims) >= 0.4 - 1e-12
    # deterministic by seed
    again = butina_clusters(fps, 0.6, max_exact=15, seed=1)
    assert np.array_equal(cl.labels, again.labels)


def test_none_fingerprints_are_rejected_not_segfaulting():
    fps = morgan_bitvects(["CCO", "xx"])
    with pytest.raises(ValueError, match="None"):
        butina_clusters(fps)


def test_degenerate_sizes():
    assert butina_clusters([]).n_clusters == 0
    one = butina_clusters(morgan_bitvects(["CCO"]))
    assert one.labels.tolist() == [0] and one.centroids.tolist() == [0]
