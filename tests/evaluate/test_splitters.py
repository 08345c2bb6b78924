"""Behaviour of the train/valid/test splitters on small hand-made molecule sets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from matfuse.chem.scaffolds import murcko_scaffold
from matfuse.chem.similarity import morgan_bitvects, nearest_neighbour_similarity
from matfuse.evaluate.clustering import butina_clusters
from matfuse.evaluate.splitters import (
    ClusterSplitter,
    PredefinedSplitter,
    PropertyOODSplitter,
    RandomSplitter,
    ScaffoldSplitter,
    Split,
    list_splitters,
    make_splitter,
    scaffold_overlap,
)

INVALID = [None, "", "not_a_smiles", "C1CC", float("nan")]


def _pick(smiles, idx):
    return [smiles[i] for i in idx]


def _mean_test_nn_similarity(smiles, split: Split) -> float:
    sim = nearest_neighbour_similarity(_pick(smiles, split.test), _pick(smiles, split.train))
    return float(np.nanmean(sim))


# ------------------------------------------------------------------------------ random


def test_random_split_partitions_with_requested_sizes(mixed_smiles, assert_partition):
    n = len(mixed_smiles)
    split = RandomSplitter(valid_size=0.15, test_size=0.2, seed=3).split(mixed_smiles)
    assert_partition(split, n)
    assert abs(split.sizes["test"] - 0.2 * n) <= 1
    assert abs(split.sizes["valid"] - 0.15 * n) <= 1
    assert split.name == "random"


def test_random_split_is_deterministic_by_seed(mixed_smiles):
    a = RandomSplitter(seed=1).split(mixed_smiles)
    b = RandomSplitter(seed=1).split(mixed_smiles)
    c = RandomSplitter(seed=2).split(mixed_smiles)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.valid, b.valid)
    assert not np.array_equal(a.test, c.test)


@pytest.mark.parametrize(
    "splitter",
    [
        RandomSplitter(0.2, 0.2, seed=0),
        ScaffoldSplitter(0.2, 0.2, seed=0),
        ScaffoldSplitter(0.2, 0.2, balanced=False),
        ClusterSplitter(0.2, 0.2, seed=0),
        PropertyOODSplitter(test_size=0.2, valid_size=0.2, tail="both"),
    ],
    ids=repr,
)
def test_invalid_smiles_do_not_crash_and_go_to_train(splitter, mixed_smiles, assert_partition):
    valid = mixed_smiles[40:]  # 28 drugs, mostly singleton groups
    smiles = INVALID[:3] + valid + INVALID[3:]
    y = np.arange(len(smiles), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = splitter.split(smiles, y)
    assert_partition(split, len(smiles))
    invalid_rows = {0, 1, 2, len(smiles) - 2, len(smiles) - 1}
    assert invalid_rows <= set(split.train.tolist())
    # fractions refer to the 28 valid molecules: round(5.6) = 6
    assert 0 < split.sizes["test"] <= 6 and 0 < split.sizes["valid"] <= 6


@pytest.mark.parametrize("name", ["random", "scaffold", "cluster", "ood"])
def test_all_invalid_or_empty_input(name, assert_partition):
    splitter = make_splitter(name)
    for smiles in ([], [None, "xx", ""]):
        split = splitter.split(smiles, np.zeros(len(smiles)))
        assert_partition(split, len(smiles))
        assert split.sizes["test"] == 0


def test_accepts_rdkit_molecules(mixed_smiles, assert_partition):
    from rdkit import Chem

    mols = [Chem.MolFromSmiles(s) for s in mixed_smiles] + [None]
    split = ScaffoldSplitter(0.1, 0.2).split(mols)
    assert_partition(split, len(mols))
    assert len(mols) - 1 in split.train


# ---------------------------------------------------------------------------- scaffold


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaffold_split_is_scaffold_disjoint(mixed_smiles, balanced, seed, assert_partition):
    n = len(mixed_smiles)
    split = ScaffoldSplitter(0.1, 0.2, seed=seed, balanced=balanced).split(mixed_smiles)
    assert_partition(split, n)
    train, test = _pick(mixed_smiles, split.train), _pick(mixed_smiles, split.test)
    assert scaffold_overlap(train, test) == 0.0
    # group splits: at most the requested size, short by less than one group
    scaffolds = [murcko_scaffold(s) for s in mixed_smiles]
    largest = max(scaffolds.count(s) for s in set(scaffolds))
    assert 0.2 * n - largest < split.sizes["test"] <= round(0.2 * n)
    assert split.sizes["valid"] <= round(0.1 * n)
    # no scaffold (including the empty one) is shared between any two parts
    parts = [{scaffolds[i] for i in getattr(split, p)} for p in ("train", "valid", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_random_split_is_not_scaffold_disjoint(series):
    # the contrast that makes the scaffold test meaningful
    smiles = series[0]
    split = RandomSplitter(0.1, 0.3, seed=0).split(smiles)
    overlap = scaffold_overlap(_pick(smiles, split.train), _pick(smiles, split.test))
    assert overlap > 0.5


def test_unbalanced_scaffold_split_ignores_seed_and_puts_big_groups_in_train(mixed_smiles):
    a = ScaffoldSplitter(0.1, 0.1, seed=0, balanced=False).split(mixed_smiles)
    b = ScaffoldSplitter(0.1, 0.1, seed=9, balanced=False).split(mixed_smiles)
    assert np.array_equal(a.test, b.test)
    # all series (groups of 10) are in train; test holds singleton drugs only
    assert set(a.test.tolist()) <= set(range(40, len(mixed_smiles)))


def test_balanced_scaffold_split_depends_on_seed(mixed_smiles):
    tests = {tuple(ScaffoldSplitter(0.1, 0.1, seed=s).split(mixed_smiles).test) for s in range(4)}
    assert len(tests) > 1


def test_group_larger_than_train_goes_to_train_with_warning(assert_partition):
    smiles = ["c1ccccc1" + s for s in ["C", "CC", "CCC", "CCCC", "O", "N", "F", "Cl"]]
    with pytest.warns(UserWarning, match="test split is empty"):
        split = ScaffoldSplitter(0.0, 0.25).split(smiles)
    assert_partition(split, len(smiles))
    assert split.sizes["train"] == len(smiles)


def test_scaffold_overlap_helper():
    train = ["c1ccccc1C", "C1CCCCC1O", "CCO"]
    assert scaffold_overlap(train, ["c1ccccc1N", "c1ccncc1"]) == 0.5
    assert math.isnan(scaffold_overlap(train, ["CCCC", None]))  # nothing with a ring


# ----------------------------------------------------------------------------- cluster


def test_cluster_split_keeps_clusters_whole(mixed_smiles, assert_partition):
    split = ClusterSplitter(0.15, 0.15, seed=4).split(mixed_smiles)
    assert_partition(split, len(mixed_smiles))
    labels = butina_clusters(morgan_bitvects(mixed_smiles), 0.6).labels
    part_of = split.labels()
    for c in np.unique(labels):
        assert len(set(part_of[labels == c])) == 1, f"cluster {c} spans parts"
    assert split.info["clustering"] == "butina"
    assert split.info["n_clusters"] == labels.max() + 1


def test_cluster_split_test_is_farther_from_train_than_random(series):
    smiles = series[0]
    cluster_sims, random_sims = [], []
    for seed in range(3):
        cluster = ClusterSplitter(0.25, 0.25, seed=seed).split(smiles)
        random = RandomSplitter(0.25, 0.25, seed=seed).split(smiles)
        assert cluster.sizes["test"] == 10  # one whole series
        cluster_sims.append(_mean_test_nn_similarity(smiles, cluster))
        random_sims.append(_mean_test_nn_similarity(smiles, random))
    assert max(cluster_sims) < 0.35 < 0.5 < min(random_sims)


def test_cluster_split_approximate_path(mixed_smiles, assert_partition):
    splitter = ClusterSplitter(0.15, 0.15, seed=0, max_exact=20)
    split = splitter.split(mixed_smiles)
    assert_partition(split, len(mixed_smiles))
    assert split.info["clustering"] == "butina-sample+leader"
    again = splitter.split(mixed_smiles)
    assert np.array_equal(split.test, again.test)


# --------------------------------------------------------------------------------- ood


@pytest.mark.parametrize("seed", [0, 5])
def test_ood_top_tail(mixed_smiles, seed, assert_partition):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=len(mixed_smiles))
    y[[3, 7]] = np.nan
    split = PropertyOODSplitter(test_size=0.2, valid_size=0.1, tail="top", seed=seed).split(
        mixed_smiles, y
    )
    assert_partition(split, len(mixed_smiles))
    assert {3, 7} <= set(split.train.tolist())
    rest = np.concatenate([split.train, split.valid])
    assert np.min(y[split.test]) >= np.nanmax(y[rest])
    assert split.sizes["test"] == round(0.2 * (len(mixed_smiles) - 2))


def test_ood_bottom_and_both_tails_use_target_index(series):
    smiles = series[0]
    y = np.column_stack([np.zeros(len(smiles)), np.arange(len(smiles), dtype=float)])
    bottom = PropertyOODSplitter(test_size=0.1, tail="bottom", target_index=1).split(smiles, y)
    assert bottom.test.tolist() == [0, 1, 2, 3]
    both = PropertyOODSplitter(test_size=0.1, tail="both", target_index=1).split(smiles, y)
    assert both.test.tolist() == [0, 1, 38, 39]
    rest = np.concatenate([both.train, both.valid])
    assert y[rest, 1].min() > 1 and y[rest, 1].max() < 38


def test_ood_ties_do_not_break_the_tail_guarantee(series):
    smiles = series[0]
    y = np.repeat([0.0, 1.0], len(smiles) // 2)
    split = PropertyOODSplitter(test_size=0.3, valid_size=0.1).split(smiles, y)
    rest = np.concatenate([split.train, split.valid])
    assert y[split.test].min() >= y[rest].max()


def test_ood_requires_targets(series):
    with pytest.raises(ValueError, match="needs the targets"):
        PropertyOODSplitter().split(series[0])


# -------------------------------------------------------------------------- predefined


def test_predefined_split_follows_labels(assert_partition):
    labels = ["train", "Valid", "TEST", "val", "train", "test"]
    smiles = ["CCO", None, "c1ccccc1", "CC", "CCC", "bad"]
    split = PredefinedSplitter(labels).split(smiles)
    assert_partition(split, 6)
    assert split.train.tolist() == [0, 4]
    assert split.valid.tolist() == [1, 3]
    assert split.test.tolist() == [2, 5]  # labels win, even for invalid SMILES
    assert split.labels().tolist() == ["train", "valid", "test", "valid", "train", "test"]


def test_predefined_split_validates():
    with pytest.raises(ValueError, match="not train/valid/test"):
        PredefinedSplitter(["train", "holdout"])
    with pytest.raises(ValueError, match="2 split labels for 3"):
        PredefinedSplitter(["train", "test"]).split(["C", "CC", "CCC"])


# ---------------------------------------------------------------------------- registry


def test_make_splitter_and_list():
    expected = ["cluster", "kfold", "ood", "predefined", "random", "scaffold"]
    assert list_splitters("molecule") == expected
    s = make_splitter("Scaffold", test_size=0.2, balanced=False)
    assert isinstance(s, ScaffoldSplitter) and s.get_params()["test_size"] == 0.2
    assert "balanced=False" in repr(s)
    assert isinstance(make_splitter("predefined", labels=["train"]), PredefinedSplitter)
    with pytest.raises(ValueError, match="unknown splitter"):
        make_splitter("stratified")
    with pytest.raises(TypeError, match="cutof"):
        make_splitter("cluster", cutof=0.4)


@pytest.mark.parametrize(
    "bad", [dict(test_size=1.0), dict(valid_size=-0.1), dict(valid_size=0.5, test_size=0.5)]
)
def test_invalid_fractions_are_rejected(bad):
    with pytest.raises(ValueError):
        RandomSplitter(**bad)


def test_y_length_is_checked(series):
    with pytest.raises(ValueError, match="rows"):
        RandomSplitter().split(series[0], np.zeros(3))


def test_no_warnings_on_normal_use(mixed_smiles):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("random", "scaffold", "cluster"):
            make_splitter(name).split(mixed_smiles)
    assert not math.isnan(scaffold_overlap(mixed_smiles, mixed_smiles))
