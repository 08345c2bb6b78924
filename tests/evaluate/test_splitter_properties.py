"""Property test: every splitter partitions every input, whatever the sizes and rows."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matfuse.chem.scaffolds import to_mol
from matfuse.evaluate.splitters import make_splitter

POOL = [
    "CCO",
    "c1ccccc1O",
    "c1ccccc1N",
    "CC(=O)Oc1ccccc1C(=O)O",
    "C1CCCCC1",
    "c1ccncc1",
    "O=C1CCCCC1",
    "CCN(CC)CC",
    "c1ccc2ccccc2c1",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "c1ccsc1",
    "C1CCOC1",
    "NCCc1c[nH]c2ccccc12",
    "O=C(c1ccccc1)N1CCNCC1",
]
ROW = st.one_of(st.sampled_from(POOL), st.sampled_from([None, "", "not_smiles"]))


@st.composite
def fractions(draw):
    test = draw(st.floats(0.0, 0.6))
    valid = draw(st.floats(0.0, 0.95 - test))
    return valid, test


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(ROW, max_size=40),
    sizes=fractions(),
    seed=st.integers(0, 2**16),
    name=st.sampled_from(["random", "scaffold", "cluster", "ood", "predefined"]),
    balanced=st.booleans(),
    tail=st.sampled_from(["top", "bottom", "both"]),
    data=st.data(),
)
def test_splitters_always_partition(rows, sizes, seed, name, balanced, tail, data):
    valid_size, test_size = sizes
    n = len(rows)
    y = np.asarray(
        data.draw(st.lists(st.floats(-5, 5) | st.just(float("nan")), min_size=n, max_size=n)),
        dtype=float,
    )
    params: dict = {"valid_size": valid_size, "test_size": test_size}
    if name == "predefined":
        params = {
            "labels": data.draw(
                st.lists(st.sampled_from(["train", "valid", "test"]), min_size=n, max_size=n)
            )
        }
    elif name == "scaffold":
        params |= {"seed": seed, "balanced": balanced}
    elif name == "ood":
        params |= {"seed": seed, "tail": tail}
    else:
        params |= {"seed": seed}
    splitter = make_splitter(name, **params)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "empty split" warnings are expected here
        split = splitter.split(rows, y)
        again = splitter.split(rows, y)

    allidx = np.concatenate([split.train, split.valid, split.test])
    assert np.array_equal(np.sort(allidx), np.arange(n))
    assert np.array_equal(split.test, again.test) and np.array_equal(split.valid, again.valid)
    if name == "predefined":
        return
    ok = np.array([to_mol(r) is not None for r in rows], dtype=bool)
    if name == "ood":
        ok &= np.isfinite(y)
    n_ok = int(ok.sum())
    assert ok[split.valid].all() and ok[split.test].all()  # only eligible rows evaluated
    if name in ("random", "ood"):
        assert abs(split.sizes["test"] - test_size * n_ok) <= 1
        assert abs(split.sizes["valid"] - valid_size * n_ok) <= 1
    else:  # group splitters never exceed the request
        assert split.sizes["test"] <= int(np.floor(test_size * n_ok + 0.5))
        assert split.sizes["valid"] <= int(np.floor(valid_size * n_ok + 0.5))
