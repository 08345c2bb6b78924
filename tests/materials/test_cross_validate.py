"""workflow.cross_validate: k-fold, group k-fold and single-split folds, encoders or end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matfuse.inputs import load_input_table
from matfuse.workflow import cross_validate

A_SITE = ["Sr", "Ba", "Ca", "K"]


@pytest.fixture
def table(build):
    rows = []
    for i in range(24):
        if i % 2:
            s = build.perovskite(3.8 + 0.02 * i, (A_SITE[i % 4], "Ti", "O"))
        else:
            s = build.rocksalt(5.0 + 0.05 * i, ["Na", "K", "Rb", "Cs"][i % 4], "Cl")
        rows.append({"cif": s.to(fmt="cif"), "y": s.volume / len(s)})
    return load_input_table(pd.DataFrame(rows), targets=["y"])


def test_kfold_covers_every_row_once_and_carries_the_baseline(table):
    cv = cross_validate(table, ["composition"], model="rf", n_folds=4, progress=False)
    assert len(cv.folds) == 4 and sum(f.n_test for f in cv.folds) == len(table)
    summary = cv.summary()["y"]["mae"]
    assert summary["mean"] < summary["baseline_mean"]  # volume per atom is learnable
    assert cv.values("mae").shape == (4,)


def test_group_folds_keep_space_groups_apart_and_a_tail_is_one_fold(table):
    cv = cross_validate(
        table, ["composition"], model="rf", folds="spacegroup", n_folds=2, progress=False
    )
    assert len(cv.folds) == 2 and {f.n_test for f in cv.folds} == {12}
    tail = cross_validate(
        table, ["composition"], model="rf", folds="ood", progress=False, test_size=0.25
    )
    assert len(tail.folds) == 1 and tail.folds[0].n_test == 6
    assert tail.to_dict()["summary"]["y"]["mae"]["mean"] > 0


def test_an_end_to_end_model_cross_validates_on_its_own_features(table):
    cv = cross_validate(
        table,
        model="crystal-graph",
        n_folds=2,
        progress=False,
        model_params={"hidden": 16, "n_conv": 2, "epochs": 3, "batch_size": 8},
    )
    assert cv.encoders == ["crystal-graph"] and len(cv.folds) == 2
    assert np.isfinite(cv.values("mae")).all()


def test_a_predefined_split_is_one_fold_and_precomputed_blocks_are_used(table):
    """A splitter without a seed (predefined labels) takes none; given blocks skip encoding;
    a one-fold result has no spread to average (NaN std, and no warning)."""
    import warnings

    from matfuse.encoders import get_encoder

    labels = ["test" if i % 3 == 0 else "train" for i in range(len(table))]
    blocks = {"composition": get_encoder("composition").encode_block(table.parsed).values}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        cv = cross_validate(
            table,
            ["composition"],
            model="rf",
            folds="predefined",
            blocks=blocks,
            progress=False,
            labels=labels,
        )
        summary = cv.summary()["y"]
    assert len(cv.folds) == 1 and cv.folds[0].n_test == labels.count("test")
    assert summary["mae"]["std"] == 0.0  # one value: no spread, but defined
    assert np.isfinite(summary["mae"]["baseline_mean"])
