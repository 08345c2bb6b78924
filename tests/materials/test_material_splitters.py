import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pymatgen")

from matfuse.evaluate.splitters import (  # noqa: E402
    ChemicalSystemSplitter,
    ElementHoldoutSplitter,
    SpaceGroupSplitter,
    list_splitters,
    make_splitter,
)
from matfuse.materials.compositions import parse_compositions  # noqa: E402
from matfuse.materials.structures import parse_structures  # noqa: E402
from matfuse.materials.symmetry import analyze_symmetry  # noqa: E402


def _covers_every_row_once(split, n):
    rows = np.concatenate([split.train, split.valid, split.test])
    assert sorted(rows.tolist()) == list(range(n))


def test_space_group_split_is_disjoint_and_invalid_rows_go_to_train(zoo):
    items = [*zoo, "broken", None]
    split = SpaceGroupSplitter(valid_size=0.2, test_size=0.25, seed=1).split(items)
    groups = analyze_symmetry(items).numbers
    _covers_every_row_once(split, len(items))
    train = {groups[i] for i in split.train if groups[i] is not None}
    assert not train & {groups[i] for i in split.test}
    assert not train & {groups[i] for i in split.valid}
    assert {12, 13} <= set(split.train.tolist())
    assert split.sizes["test"] > 0


@pytest.mark.filterwarnings("ignore:.*split is empty")
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([1, 2, 14, 62, 139, 194, 221, 225, 227]), min_size=5, max_size=60),
    st.integers(0, 10_000),
    st.floats(0.05, 0.4),
    st.floats(0.0, 0.3),
)
def test_space_group_split_never_shares_a_group(groups, seed, test_size, valid_size):
    """Property test over precomputed space groups (the symmetry step is tested above)."""
    items = parse_compositions(["NaCl"] * len(groups))  # only validity matters here
    splitter = SpaceGroupSplitter(
        valid_size=valid_size, test_size=test_size, seed=seed, space_groups=groups
    )
    split = splitter.split(items)
    _covers_every_row_once(split, len(groups))
    train = {groups[i] for i in split.train}
    assert not train & {groups[i] for i in split.test}
    assert not train & {groups[i] for i in split.valid}
    assert not {groups[i] for i in split.valid} & {groups[i] for i in split.test}
    n_test = int(np.floor(test_size * len(groups) + 0.5))
    sizes = {g: groups.count(g) for g in set(groups)}
    if split.sizes["test"] > n_test:
        # nothing fitted the requested size: the smallest whole group is held out instead
        held_out = {groups[i] for i in split.test}
        assert len(held_out) == 1 and sizes[held_out.pop()] == min(sizes.values())
    if n_test > 0 and len(sizes) >= 2:
        assert split.sizes["test"] > 0  # never an empty test set when one can be made
    n_valid = int(np.floor(valid_size * len(groups) + 0.5))
    not_tested = set(sizes) - {groups[i] for i in split.test}
    if n_valid > 0 and len(sizes) >= 3 and len(not_tested) >= 2:
        assert split.sizes["valid"] > 0  # nor an empty valid set, keeping two train groups


def test_few_large_space_groups_still_give_valid_and_test_without_warnings():
    """perov_5 has five space groups of 10-30 % each: a 10 % valid/test request fits no
    group, so the smallest groups are held out, not an empty valid set and a warning."""
    import warnings

    groups = [221] * 30 + [123] * 25 + [99] * 20 + [47] * 15 + [25] * 10
    items = parse_compositions(["NaCl"] * len(groups))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split = SpaceGroupSplitter(space_groups=groups).split(items)
    assert {groups[i] for i in split.test} == {25} and {groups[i] for i in split.valid} == {47}
    assert split.sizes["train"] == 75


def test_space_group_folds_cover_every_row_once(zoo):
    parsed = parse_structures(zoo)
    groups = analyze_symmetry(parsed).numbers
    folds = SpaceGroupSplitter(valid_size=0.0, seed=3).folds(parsed, n_folds=3)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(zoo)))
    for fold in folds:
        _covers_every_row_once(fold, len(zoo))
        assert not {groups[i] for i in fold.train} & {groups[i] for i in fold.test}
    with pytest.raises(ValueError, match="groups cannot make"):
        SpaceGroupSplitter().folds(parsed, n_folds=10)
    with pytest.raises(TypeError, match="needs structure inputs"):
        SpaceGroupSplitter().split(parse_compositions(["NaCl", "MgO"]))


def test_element_holdout_keeps_the_element_out_of_train():
    formulas = ["NaCl", "MgO", "CaO", "KCl", "Fe2O3", "LiF", "NaF", "Xx", "SiC", "TiO2"]
    split = ElementHoldoutSplitter(element="O", valid_size=0.2, seed=0).split(formulas)
    _covers_every_row_once(split, len(formulas))
    assert sorted(split.test.tolist()) == [1, 2, 4, 9]
    assert all("O" not in formulas[i] for i in split.train)
    assert 7 in split.train  # the invalid row
    folds = ElementHoldoutSplitter(min_count=2).folds(formulas)
    assert [f.info["element"] for f in folds] == ["O", "F", "Na", "Cl"]


def test_chemical_system_split_keeps_systems_whole(nacl, crystals):
    items = ["NaCl", "Na2Cl3", "NaCl3", "MgO", "Mg2O3", "LiF", "Li2F2", "CaO", "KBr", "SiC"]
    split = ChemicalSystemSplitter(valid_size=0.2, test_size=0.2, seed=4).split(items)
    systems = [
        "-".join(sorted(c.chemical_system.split("-")))
        for c in parse_compositions(items).compositions
    ]
    _covers_every_row_once(split, len(items))
    train = {systems[i] for i in split.train}
    assert not train & {systems[i] for i in split.test}
    assert split.info["n_groups"] == 6
    # structures work too (their composition decides the system)
    s = ChemicalSystemSplitter(test_size=0.5).split([nacl, crystals.rocksalt(6.0), crystals.bcc()])
    assert s.sizes["test"] in (1, 2)


def test_random_and_ood_are_reused_from_evaluate(zoo):
    items = [*zoo, "broken"]
    y = np.arange(len(items), dtype=float)
    random_split = make_splitter("random", test_size=0.25, seed=0).split(items)
    _covers_every_row_once(random_split, len(items))
    assert 12 in random_split.train and random_split.sizes["test"] == 3  # 25% of 12 valid
    ood = make_splitter("ood", test_size=0.25, tail="top").split(items, y)
    assert ood.test.tolist() == [9, 10, 11] and ood.name == "ood"
    assert set(list_splitters("structure")) >= {"random", "ood", "spacegroup", "element", "chemsys"}
    # one registry: molecule splitters exist but do not apply to structures
    assert "scaffold" not in list_splitters("structure")
    assert "spacegroup" not in list_splitters("composition")
    assert "element" in list_splitters("composition")
    with pytest.raises(ValueError, match="unknown splitter"):
        make_splitter("nope")
    with pytest.raises(TypeError, match="unknown parameter"):
        make_splitter("spacegroup", radius=2)
