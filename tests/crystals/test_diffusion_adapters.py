"""Space-group and chemical-system conditions, and MatterGen-style adapter fine-tuning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.crystals.diffusion.conditions import ConditionScaler, parse_conditions
from matfuse.crystals.diffusion.data import crystal_set_from_structures, set_conditions
from matfuse.crystals.diffusion.model import DenoiserConfig, PeriodicDenoiser
from matfuse.crystals.diffusion.persistence import load_crystal_model
from matfuse.crystals.diffusion.sampling import generate_de_novo
from matfuse.crystals.diffusion.training import TrainConfig, train_crystal_flow

TINY = DenoiserConfig(hidden=16, layers=2, n_frequencies=3, time_dim=8, type_head=True)
SPECIES = [("Sr", "Ti", "O"), ("Ba", "Ti", "O"), ("Ca", "Zr", "O"), ("K", "Nb", "O")]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _structures() -> list[Structure]:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    cubic = [
        Structure(Lattice.cubic(3.8 + 0.1 * i), [a, b, x, x, x], coords)
        for i, (a, b, x) in enumerate(SPECIES)
    ]
    # a tetragonal cell (another space group) so the space-group condition varies
    tetra = Structure(Lattice.tetragonal(3.9, 4.3), ["Pb", "Ti", "O", "O", "O"], coords)
    return [*cubic, tetra]


def _crystals(names: list[str], values: dict[str, list[float]] | None = None):
    structures = _structures()
    crystals = crystal_set_from_structures(structures)
    return set_conditions(crystals, structures, names, values)


def _config(**kw) -> TrainConfig:
    base = dict(batch_size=5, max_steps=6, checkpoint_every=3, warmup_steps=2, p_drop=0.3)
    return TrainConfig(**{**base, **kw})


def test_conditions_are_encoded_by_kind():
    scaler = ConditionScaler(
        names=["heat_ref", "space_group", "chemical_system"],
        mean=[1.0, 0.0, 0.0],
        std=[2.0, 1.0, 1.0],
        kinds=["scalar", "space_group", "chemical_system"],
    )
    assert scaler.width == 1 + 1 + 104
    row = scaler.row({"space_group": "Pm-3m", "chemical_system": "Sr-Ti-O"})
    assert torch.isnan(row[0]) and row[1] == 221
    assert set(torch.nonzero(row[2:]).flatten().tolist()) == {38, 22, 8}
    assert scaler.row({"space_group": 62.0})[1] == 62
    # scalars are standardised, the categorical columns pass unchanged
    out = scaler.transform(scaler.row({"heat_ref": 3.0, "space_group": 221}).unsqueeze(0))
    assert out[0, 0] == 1.0 and out[0, 1] == 221
    for bad, message in (
        ({"space_group": 231}, "1 to 230"),
        ({"space_group": "Xx-9"}, "symbol"),
        ({"chemical_system": "Sr-Qq"}, "unknown element"),
        ({"heat_ref": "abc"}, "not a number"),
        ({"band_gap": 1.0}, "no condition band_gap"),
    ):
        with pytest.raises(ValueError, match=message):
            scaler.row(bad)
    # older model directories (no kinds) read as all scalars
    assert ConditionScaler(names=["a"], mean=[0.0], std=[1.0]).kinds == ["scalar"]
    assert parse_conditions(["space_group=Pm-3m", "heat_ref=1"]) == {
        "space_group": "Pm-3m",
        "heat_ref": 1.0,
    }


def test_space_group_and_chemical_system_are_derived_from_the_structures():
    crystals = _crystals(["space_group", "chemical_system"])
    assert crystals.properties is not None and crystals.properties.shape == (5, 105)
    assert crystals.properties[:4, 0].tolist() == [221.0] * 4
    assert crystals.properties[4, 0] == 123.0  # P4/mmm
    assert crystals.properties[0, 1 + 38] == 1.0 and crystals.properties[0, 1 + 56] == 0.0


def test_a_base_model_learns_categorical_conditions_and_samples_them(tmp_path):
    crystals = _crystals(["space_group", "chemical_system"])
    train_crystal_flow(crystals, tmp_path / "run", config=_config(), architecture=TINY)
    model = load_crystal_model(tmp_path / "run")
    assert model.conditions is not None
    assert model.conditions.kinds == ["space_group", "chemical_system"]
    targets = {"space_group": "Pm-3m", "chemical_system": "Ba-Ti-O"}
    a = generate_de_novo(model, n=3, seed=1, steps=4, conditions=targets, guidance=2.0)
    b = generate_de_novo(tmp_path / "run", n=3, seed=1, steps=4, conditions=targets, guidance=2.0)
    assert [s.frac_coords.tolist() for s in a] == [s.frac_coords.tolist() for s in b]
    free = generate_de_novo(model, n=3, seed=1, steps=4)
    assert [s.frac_coords.tolist() for s in a] != [s.frac_coords.tolist() for s in free]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("base")
    crystals = _crystals(["heat_ref"], {"heat_ref": [0.1, 0.5, np.nan, 1.0, 0.3]})
    train_crystal_flow(crystals, out, config=_config(), architecture=TINY, name="base")
    return out


def _adapt(base_run, out, **kw):
    crystals = _crystals(["band_gap", "space_group"], {"band_gap": [1.0, 2.0, 3.0, 0.5, 1.5]})
    return train_crystal_flow(crystals, out, config=_config(**kw), adapt_from=base_run)


def _outputs(net: PeriodicDenoiser, conditions: torch.Tensor | None):
    torch.manual_seed(3)
    n_atoms = torch.tensor([5, 5])
    from matfuse.crystals.diffusion.data import pair_edges

    edges, graph = pair_edges(n_atoms)
    types = torch.tensor([38, 22, 8, 8, 8, 0, 0, 0, 0, 0])
    frac = torch.rand(10, 3)
    lattice = torch.eye(3).repeat(2, 1, 1) * 4.0
    t = torch.tensor([0.3, 0.7])
    return net(types, frac, lattice, t, graph, n_atoms, edges, conditions)


def test_adapters_start_as_the_base_model_and_train_only_themselves(base_run, tmp_path):
    base = load_crystal_model(base_run)
    zero = _adapt(base_run, tmp_path / "zero", max_steps=0)
    adapted0 = load_crystal_model(zero.model_dir)
    assert adapted0.denoiser.config.adapter_kinds == ["scalar", "space_group"]
    assert adapted0.conditions is not None
    assert adapted0.conditions.names == ["heat_ref", "band_gap", "space_group"]
    row = adapted0.conditions.row({"band_gap": 2.0, "space_group": 221})
    cond = adapted0.conditions.transform(row.unsqueeze(0).repeat(2, 1)).float()
    base_out = _outputs(base.denoiser, None)
    # zero-initialised mixins: conditioned or not, the untrained adapter is the base
    for out in (_outputs(adapted0.denoiser, cond), _outputs(adapted0.denoiser, None)):
        assert all(torch.equal(x, y) for x, y in zip(out, base_out, strict=True) if x is not None)

    trained = _adapt(base_run, tmp_path / "tuned", max_steps=8, lr=1e-2)
    tuned = load_crystal_model(trained.model_dir)
    base_sd, tuned_sd = base.denoiser.state_dict(), tuned.denoiser.state_dict()
    assert all(torch.equal(base_sd[k], tuned_sd[k]) for k in base_sd)  # frozen, bit for bit
    mixins = [k for k in tuned_sd if k.startswith("adapter_mixins")]
    assert mixins and any(tuned_sd[k].abs().sum() > 0 for k in mixins)
    conditioned = _outputs(tuned.denoiser, cond)
    assert not torch.equal(conditioned[0], base_out[0])
    # without adapter conditions the tuned model is still exactly the base model
    free = _outputs(tuned.denoiser, None)
    assert all(torch.equal(x, y) for x, y in zip(free, base_out, strict=True) if x is not None)
    # de novo sampling of the adapted model draws sizes and elements as its base
    assert tuned.atom_counts == base.atom_counts and tuned.elements == base.elements
    assert tuned.meta["adapted_from"] == str(base_run)


def test_adapter_run_resumes_exactly(base_run, tmp_path):
    _adapt(base_run, tmp_path / "a", max_steps=6)
    _adapt(base_run, tmp_path / "b", max_steps=3)
    crystals = _crystals(["band_gap", "space_group"], {"band_gap": [1.0, 2.0, 3.0, 0.5, 1.5]})
    train_crystal_flow(crystals, tmp_path / "b", config=_config(max_steps=6), resume=True)
    a = load_crystal_model(tmp_path / "a").denoiser.state_dict()
    b = load_crystal_model(tmp_path / "b").denoiser.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_adapters_refuse_a_condition_the_base_has(base_run, tmp_path):
    crystals = _crystals(["heat_ref"], {"heat_ref": [0.1, 0.5, 0.2, 1.0, 0.3]})
    with pytest.raises(ValueError, match="already conditions on heat_ref"):
        train_crystal_flow(crystals, tmp_path / "x", config=_config(), adapt_from=base_run)


def test_guided_sampling_of_an_adapted_model_is_seeded(base_run, tmp_path):
    trained = _adapt(base_run, tmp_path / "t", max_steps=4)
    model = load_crystal_model(trained.model_dir)
    targets = {"band_gap": 2.5, "space_group": "Pm-3m"}
    runs = [
        generate_de_novo(model, n=2, seed=5, steps=3, conditions=targets, guidance=1.5)
        for _ in range(2)
    ]
    assert [s.frac_coords.tolist() for s in runs[0]] == [s.frac_coords.tolist() for s in runs[1]]
    other = generate_de_novo(model, n=2, seed=6, steps=3, conditions=targets, guidance=1.5)
    assert [s.frac_coords.tolist() for s in other] != [s.frac_coords.tolist() for s in runs[0]]


def test_cli_adapts_a_model_and_generates_with_its_condition(base_run, tmp_path):
    rows = [
        {"cif": s.to(fmt="cif"), "band_gap": g}
        for s, g in zip(_structures(), [1.0, 2.0, 3.0, 0.5, 1.5], strict=True)
    ]
    table = tmp_path / "labelled.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    runner = CliRunner()
    train = [
        "crystal-train", str(table), "--out", str(tmp_path / "run"), "--adapt-from",
        str(base_run), "--condition-on", "band_gap", "--condition-on", "space_group",
        "--max-steps", "3", "--batch-size", "5",
    ]  # fmt: skip
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["train"]["lr"] == 5e-3  # the adapter default, not the from-scratch one
    # resuming without --lr (or --adapt-from) takes the run's own rate
    more = [*train[:4], "--max-steps", "4", "--batch-size", "5", "--resume"]
    result = runner.invoke(app, more)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 4
    gen = [
        "crystal-generate", "--model", str(tmp_path / "run"), "--n", "3", "--steps", "3",
        "--condition", "space_group=Pm-3m", "--condition", "band_gap=2", "--guidance", "2",
        "--out", str(tmp_path / "gen"),
    ]  # fmt: skip
    result = runner.invoke(app, gen)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "gen" / "candidates.csv")) == 3
    bad = runner.invoke(app, [*gen[:-2], "--condition", "space_group=999", "--out", "x"])
    assert bad.exit_code == 2 and "1 to 230" in bad.output and "Traceback" not in bad.output
    no_condition = runner.invoke(
        app, [*train[:4], "--out", str(tmp_path / "r2"), "--adapt-from", str(base_run)]
    )
    assert no_condition.exit_code == 2 and "--condition-on" in no_condition.output
