"""The learned crystal generator: invariances, training, exact resume, reproducible sampling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure

from matfuse.crystals.diffusion.data import (
    crystal_set_from_structures,
    crystal_set_from_table,
    pair_edges,
)
from matfuse.crystals.diffusion.lattice import (
    lattice_features,
    matrix_from_parameters,
    raw_parameters,
)
from matfuse.crystals.diffusion.model import DenoiserConfig, PeriodicDenoiser
from matfuse.crystals.diffusion.persistence import load_crystal_model
from matfuse.crystals.diffusion.sampling import cell_problem, generate_structures
from matfuse.crystals.diffusion.training import TrainConfig, train_crystal_flow

TINY = DenoiserConfig(hidden=16, layers=2, n_frequencies=3, time_dim=8)


def _perovskite(a: float, sp: tuple[str, str, str]) -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [sp[0], sp[1], sp[2], sp[2], sp[2]], coords)


def _structures() -> list[Structure]:
    return [
        _perovskite(3.9, ("Sr", "Ti", "O")),
        _perovskite(4.0, ("Ba", "Ti", "O")),
        _perovskite(3.8, ("Ca", "Zr", "O")),
        Structure(
            Lattice.hexagonal(3.2, 5.2),
            ["Zn", "Zn", "O", "O"],
            [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]],
        ),
    ]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    crystals = crystal_set_from_structures(_structures())
    config = TrainConfig(batch_size=4, max_steps=8, checkpoint_every=4, warmup_steps=2)
    train_crystal_flow(crystals, out, config=config, architecture=TINY, name="tiny")
    return out


# ---------------------------------------------------------------------------- network


def _random_cell(seed: int = 0, n: int = 4):
    g = torch.Generator().manual_seed(seed)
    types = torch.tensor([8, 8, 22, 38][:n])
    frac = torch.rand((n, 3), generator=g, dtype=torch.float64)
    raw = raw_parameters(
        torch.tensor([[3.5, 4.1, 5.0]], dtype=torch.float64),
        torch.tensor([[80.0, 95.0, 105.0]], dtype=torch.float64),
        torch.tensor([n]),
    )
    lattice = matrix_from_parameters(raw, torch.tensor([n]))
    return types, frac, lattice


def _outputs(model, types, frac, lattice, t=0.3):
    n_atoms = torch.tensor([len(types)])
    edges, graph = pair_edges(n_atoms)
    with torch.no_grad():
        return model(
            types, frac, lattice, torch.tensor([t], dtype=frac.dtype), graph, n_atoms, edges
        )[:2]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return PeriodicDenoiser(TINY).double().eval()


def test_denoiser_is_permutation_equivariant(model):
    types, frac, lattice = _random_cell()
    v_f, v_l = _outputs(model, types, frac, lattice)
    perm = torch.tensor([2, 0, 3, 1])
    p_f, p_l = _outputs(model, types[perm], frac[perm], lattice)
    assert torch.allclose(p_f, v_f[perm], atol=1e-10)
    assert torch.allclose(p_l, v_l, atol=1e-10)


def test_denoiser_is_invariant_to_lattice_rotation(model):
    types, frac, lattice = _random_cell()
    v_f, v_l = _outputs(model, types, frac, lattice)
    q, _ = torch.linalg.qr(
        torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    )
    rotated = lattice @ q.T  # every lattice vector rotated
    assert not torch.allclose(rotated, lattice)
    r_f, r_l = _outputs(model, types, frac, rotated)
    assert torch.allclose(r_f, v_f, atol=1e-9)
    assert torch.allclose(r_l, v_l, atol=1e-9)


def test_denoiser_is_invariant_to_integer_and_global_translations(model):
    types, frac, lattice = _random_cell()
    v_f, v_l = _outputs(model, types, frac, lattice)
    shifts = torch.tensor([[1.0, 0, -2], [0, 3, 0], [-1, -1, 1], [0, 0, 5]], dtype=torch.float64)
    s_f, s_l = _outputs(model, types, frac + shifts, lattice)
    assert torch.allclose(s_f, v_f, atol=1e-8) and torch.allclose(s_l, v_l, atol=1e-8)
    g_f, _ = _outputs(
        model, types, frac + torch.tensor([0.13, -0.4, 0.77], dtype=torch.float64), lattice
    )
    assert torch.allclose(g_f, v_f, atol=1e-8)


def test_denoiser_sees_the_lattice_and_the_time(model):
    """The invariance tests would pass for a network that ignores its inputs; this one fails it."""
    types, frac, lattice = _random_cell()
    v_f, v_l = _outputs(model, types, frac, lattice)
    s_f, s_l = _outputs(model, types, frac, lattice * 1.3)
    t_f, _ = _outputs(model, types, frac, lattice, t=0.9)
    assert not torch.allclose(s_l, v_l, atol=1e-6)
    assert not torch.allclose(t_f, v_f, atol=1e-6)


def test_lattice_parameters_round_trip():
    lat = Lattice.from_parameters(3.0, 4.5, 6.0, 75.0, 92.0, 110.0)
    n = torch.tensor([6])
    raw = raw_parameters(
        torch.tensor([lat.abc], dtype=torch.float64),
        torch.tensor([lat.angles], dtype=torch.float64),
        n,
    )
    matrix = matrix_from_parameters(raw, n)[0].numpy()
    assert np.allclose(Lattice(matrix).parameters, lat.parameters, atol=1e-8)
    feats = lattice_features(torch.tensor(matrix)[None], n)[0].numpy()
    assert np.allclose(np.cos(np.deg2rad(lat.angles)), feats[3:], atol=1e-10)


# ------------------------------------------------------------------------ data & train


def test_bad_rows_are_flagged_not_fatal(tmp_path):
    good = [s.to(fmt="cif") for s in _structures()]
    path = tmp_path / "t.csv"
    pd.DataFrame({"cif": [good[0], "data_broken\n_cell_length_a x\n", None, good[1]]}).to_csv(
        path, index=False
    )
    crystals = crystal_set_from_table(path)
    assert len(crystals) == 2
    assert [row for row, _ in crystals.skipped] == [1, 2]
    with pytest.raises(ValueError, match="no 'structure' column"):
        crystal_set_from_table(path, column="structure")


def test_training_lowers_the_loss_and_exports(tiny_run):
    rows = [json.loads(x) for x in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    flow = load_crystal_model(tiny_run)
    assert flow.meta["steps"] == 8 and flow.max_atoms == 5
    assert set(flow.elements) == {"Ba", "Ca", "O", "Sr", "Ti", "Zn", "Zr"}


def test_resume_after_a_stop_is_exact(tmp_path):
    crystals = crystal_set_from_structures(_structures())
    cfg = {"batch_size": 3, "checkpoint_every": 3, "warmup_steps": 2, "seed": 5}
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_crystal_flow(
        crystals, straight, config=TrainConfig(max_steps=7, **cfg), architecture=TINY
    )
    train_crystal_flow(crystals, split, config=TrainConfig(max_steps=3, **cfg), architecture=TINY)
    with pytest.raises(FileExistsError):
        train_crystal_flow(crystals, split, config=TrainConfig(max_steps=7, **cfg))
    res = train_crystal_flow(crystals, split, config=TrainConfig(max_steps=7, **cfg), resume=True)
    assert res.resumed_from == 3 and res.steps == 7
    a = load_crystal_model(straight).denoiser.state_dict()
    b = load_crystal_model(split).denoiser.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    la = [json.loads(x)["loss"] for x in (straight / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert la == lb and len(la) == 7
    with pytest.raises(ValueError, match="batch_size"):
        train_crystal_flow(
            crystals,
            split,
            config=TrainConfig(max_steps=9, **{**cfg, "batch_size": 2}),
            resume=True,
        )


def test_resume_uses_a_checkpoint_left_half_renamed(tmp_path):
    """A kill between removing the old checkpoint and renaming the new one leaves ``.tmp``."""
    crystals = crystal_set_from_structures(_structures())
    cfg = {"batch_size": 2, "checkpoint_every": 2, "warmup_steps": 1}
    train_crystal_flow(
        crystals, tmp_path, config=TrainConfig(max_steps=2, **cfg), architecture=TINY
    )
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.tmp")
    res = train_crystal_flow(
        crystals, tmp_path, config=TrainConfig(max_steps=4, **cfg), resume=True
    )
    assert res.resumed_from == 2 and res.steps == 4


# ---------------------------------------------------------------------------- sampling


def test_sampling_is_reproducible_and_valid(tiny_run):
    a = generate_structures(tiny_run, "SrTiO3", n=3, seed=7, steps=5)
    b = generate_structures(tiny_run, "SrTiO3", n=3, seed=7, steps=5)
    c = generate_structures(tiny_run, "SrTiO3", n=3, seed=8, steps=5)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.frac_coords, y.frac_coords)
        assert np.array_equal(x.lattice.matrix, y.lattice.matrix)
    assert not np.allclose(a[0].frac_coords, c[0].frac_coords)
    for s in a:
        assert isinstance(s, Structure)
        assert s.composition == Composition("SrTiO3")
        assert s.volume > 0 and np.isfinite(s.lattice.matrix).all()
    two = generate_structures(tiny_run, "SrTiO3", n=1, seed=0, z=2, steps=3)[0]
    assert two.composition == Composition("Sr2Ti2O6")


def test_cell_problem_flags_overlapping_atoms():
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    assert "apart" in cell_problem(s)
    assert cell_problem(_structures()[0]) is None


def test_diffusion_generator_streams_candidates(tiny_run):
    from matfuse.crystals.diffusion.generator import DiffusionGenerator
    from matfuse.crystals.generators import GENERATORS

    assert GENERATORS.get("diffusion") is DiffusionGenerator
    gen = DiffusionGenerator("BaZrO3", z=(1, 4), seed=1, model=tiny_run, block_size=2, steps=3)
    first = [c for _, c in zip(range(3), gen.candidates(), strict=False)]
    again = [c for _, c in zip(range(3), gen.candidates(), strict=False)]
    assert [c.origin for c in first] == [c.origin for c in again]
    assert all(
        np.array_equal(a.structure.frac_coords, b.structure.frac_coords)
        for a, b in zip(first, again, strict=True)
    )
    # the model saw 5-atom cells only, so ABX3 is asked for Z=1
    assert all(len(c.structure) == 5 and c.origin.startswith("diffusion:tiny:Z=1") for c in first)
    with pytest.raises(ValueError, match="unknown crystal model"):
        DiffusionGenerator("BaZrO3", model="no-such-model")


def test_csp_search_runs_the_diffusion_strategy(tiny_run, tmp_path, monkeypatch):
    """``matfuse csp --strategy diffusion``'s path: generated cells go through relax -> rank."""
    from matfuse.crystals.diffusion.generator import DiffusionGenerator
    from matfuse.crystals.search import crystal_structure_prediction
    from matfuse.materials.energy import RelaxResult

    monkeypatch.setattr(DiffusionGenerator, "default_model", str(tiny_run))

    calls = []

    def fake_relax(structure, relax_cell=True):  # energy from the volume; the 2nd one fails
        calls.append(1)
        if len(calls) == 2:
            return RelaxResult(None, float("nan"), False, 0, "relaxation failed: test")
        return RelaxResult(structure, -1.0 - 0.01 * structure.volume / len(structure), True, 1)

    result = crystal_structure_prediction(
        "SrTiO3",
        z=(1, 1),
        strategy="diffusion",
        budget=3,
        relaxer=fake_relax,
        potential="fake",
        out_dir=tmp_path / "csp",
    )
    assert result.n_relaxations == 3 and result.strategy == "diffusion"
    assert all(c.origin.startswith("diffusion:tiny:Z=1") for c in result.candidates)
    table = pd.read_csv(tmp_path / "csp" / "candidates.csv")
    assert "cif" in table.columns and len(table) == 3
    assert result.n_failed == 1 and table["cif"].isna().sum() == 1  # a failure is a row
