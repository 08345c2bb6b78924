"""De novo mode, property conditioning (CFG), warm start, data parallelism, de novo metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from matfuse.crystals.diffusion.conditions import ConditionScaler, parse_conditions
from matfuse.crystals.diffusion.data import crystal_set_from_structures
from matfuse.crystals.diffusion.evaluation import coverage, validity, wasserstein
from matfuse.crystals.diffusion.model import DenoiserConfig
from matfuse.crystals.diffusion.persistence import load_crystal_model
from matfuse.crystals.diffusion.sampling import generate_de_novo, generate_structures
from matfuse.crystals.diffusion.training import TrainConfig, train_crystal_flow

TINY = DenoiserConfig(hidden=16, layers=2, n_frequencies=3, time_dim=8, type_head=True)
SPECIES = [("Sr", "Ti", "O"), ("Ba", "Ti", "O"), ("Ca", "Zr", "O"), ("K", "Nb", "O")]


def _perovskite(a: float, sp: tuple[str, str, str]) -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [sp[0], sp[1], sp[2], sp[2], sp[2]], coords)


def _crystals(with_property: bool = True):
    structures = [_perovskite(3.8 + 0.1 * i, sp) for i, sp in enumerate(SPECIES)]
    crystals = crystal_set_from_structures(structures)
    if with_property:
        crystals.properties = np.array([[-0.5], [0.2], [np.nan], [1.0]])
        crystals.property_names = ["heat_ref"]
    return crystals


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**kw) -> TrainConfig:
    base = dict(batch_size=4, max_steps=6, checkpoint_every=3, warmup_steps=2, p_drop=0.5)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def denovo_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("denovo")
    train_crystal_flow(_crystals(), out, config=_config(), architecture=TINY, name="tiny-dn")
    return out


def test_de_novo_training_logs_a_type_loss_and_saves_conditions(denovo_run):
    rows = [json.loads(line) for line in (denovo_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(np.isfinite(r["types"]) for r in rows)
    model = load_crystal_model(denovo_run)
    assert model.de_novo and model.atom_counts == {5: 4}
    assert model.conditions is not None and model.conditions.names == ["heat_ref"]
    # NaN (unknown) rows are left out of the standardisation
    assert model.conditions.mean[0] == pytest.approx(np.mean([-0.5, 0.2, 1.0]))
    assert set(model.elements) == {"Sr", "Ba", "Ca", "K", "Ti", "Zr", "Nb", "O"}


def test_de_novo_resume_after_a_stop_is_exact(tmp_path):
    straight, split = tmp_path / "a", tmp_path / "b"
    train_crystal_flow(_crystals(), straight, config=_config(), architecture=TINY)
    train_crystal_flow(_crystals(), split, config=_config(max_steps=3), architecture=TINY)
    train_crystal_flow(_crystals(), split, config=_config(), architecture=TINY, resume=True)
    a = load_crystal_model(straight).denoiser.state_dict()
    b = load_crystal_model(split).denoiser.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_de_novo_sampling_is_seeded_and_respects_elements(denovo_run):
    model = load_crystal_model(denovo_run)
    first = generate_de_novo(model, n=6, seed=3, steps=5)
    again = generate_de_novo(model, n=6, seed=3, steps=5)
    other = generate_de_novo(model, n=6, seed=4, steps=5)
    assert [s.to(fmt="cif") for s in first] == [s.to(fmt="cif") for s in again]
    assert [s.to(fmt="cif") for s in first] != [s.to(fmt="cif") for s in other]
    assert all(len(s) == 5 for s in first)  # the only atom count seen in training
    # by default only the elements seen in training are generated
    seen = set(model.elements)
    assert all({e.symbol for e in s.composition.elements} <= seen for s in first)
    only = generate_de_novo(model, n=6, seed=3, steps=5, elements=["Sr", "O"], n_atoms=3)
    assert all(len(s) == 3 for s in only)
    assert all({e.symbol for e in s.composition.elements} <= {"Sr", "O"} for s in only)


def test_guidance_zero_is_the_unconditional_sampler_and_one_is_not(denovo_run):
    model = load_crystal_model(denovo_run)
    free = generate_de_novo(model, n=4, seed=0, steps=4)
    zero = generate_de_novo(model, n=4, seed=0, steps=4, conditions={"heat_ref": -0.5}, guidance=0)
    cond = generate_de_novo(model, n=4, seed=0, steps=4, conditions={"heat_ref": -0.5}, guidance=1)
    assert [s.to(fmt="cif") for s in free] == [s.to(fmt="cif") for s in zero]
    assert [s.to(fmt="cif") for s in free] != [s.to(fmt="cif") for s in cond]
    with pytest.raises(ValueError, match="no condition band_gap"):
        generate_de_novo(model, n=1, conditions={"band_gap": 1.0})


def test_the_joint_model_still_does_csp(denovo_run):
    cells = generate_structures(denovo_run, "SrTiO3", n=3, seed=0, steps=4)
    assert all(c.composition.reduced_formula == "SrTiO3" for c in cells)


def test_csp_only_model_refuses_de_novo_and_warm_starts_a_joint_one(tmp_path):
    csp = DenoiserConfig(hidden=16, layers=2, n_frequencies=3, time_dim=8)
    train_crystal_flow(_crystals(False), tmp_path / "csp", config=_config(), architecture=csp)
    with pytest.raises(ValueError, match="CSP only"):
        generate_de_novo(tmp_path / "csp", n=1)
    train_crystal_flow(
        _crystals(),
        tmp_path / "joint",
        config=_config(max_steps=0),
        architecture=TINY,
        init_from=tmp_path / "csp" / "model",
    )
    donor = load_crystal_model(tmp_path / "csp").denoiser.state_dict()
    joint = load_crystal_model(tmp_path / "joint").denoiser.state_dict()
    assert torch.equal(donor["layers.0.edge.0.weight"], joint["layers.0.edge.0.weight"])
    assert "type_head.2.weight" in joint and "type_head.2.weight" not in donor


def test_shipped_perov5_model_loads():
    model = load_crystal_model("perov5")
    cells = (
        generate_de_novo(model, n=2, seed=0, steps=3)
        if model.de_novo
        else generate_structures(model, "SrTiO3", n=2, seed=0, steps=3)
    )
    assert len(cells) == 2


def test_parse_conditions_and_scaler():
    assert parse_conditions(["heat_ref=-0.5", " gap = 2"]) == {"heat_ref": -0.5, "gap": 2.0}
    for bad in ("heat_ref", "=1", "heat_ref=", "heat_ref=nan"):
        with pytest.raises(ValueError):
            parse_conditions([bad])
    # text values are kept for their condition's kind to read; a scalar refuses them
    assert parse_conditions(["heat_ref=abc"]) == {"heat_ref": "abc"}
    scaler = ConditionScaler.fit(["a"], torch.tensor([[1.0], [3.0], [float("nan")]]))
    assert scaler.mean == [2.0] and scaler.std == [1.0]
    assert torch.isnan(scaler.row({})).all()
    with pytest.raises(ValueError, match="not a number"):
        scaler.row({"a": "abc"})


def test_coverage_counts_invalid_samples_against_precision():
    rng = np.random.default_rng(0)
    ref_s, ref_c = rng.random((10, 4)), rng.random((10, 3)) * 10
    cov = coverage(
        ref_s[:5], ref_c[:5], ref_s, ref_c, n_generated=10, struct_cutoff=0.01, comp_cutoff=0.01
    )
    # five exact copies among ten generated (five invalid ones were not fingerprinted)
    assert cov.recall == pytest.approx(0.5) and cov.precision == pytest.approx(0.5)
    far = coverage(ref_s + 5, ref_c, ref_s, ref_c, n_generated=10, struct_cutoff=0.2, comp_cutoff=4)
    assert far.recall == 0.0 and far.precision == 0.0
    assert wasserstein([0, 1], [0, 1]) == 0.0 and wasserstein([0.0], [2.0]) == 2.0


def test_validity_flags_overlaps_and_charge_imbalance():
    good = _perovskite(3.9, ("Sr", "Ti", "O"))
    squashed = good.copy()
    squashed.translate_sites([2], [0.0, 0.0, 0.45])  # an O 0.2 A from another O
    unbalanced = _perovskite(3.9, ("Na", "Na", "O"))  # Na2O3: no charge-neutral assignment
    struct, comp = validity([good, squashed, unbalanced, None])
    assert struct.tolist() == [True, False, True, False]
    assert comp.tolist() == [True, True, False, False]


def test_two_process_data_parallel_training_matches_one_process(tmp_path):
    """``torchrun --nproc-per-node 2`` on gloo: the same loss curve and weights as one process
    (every rank draws the whole batch's noise and keeps its half of the crystals)."""
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys, torch\n"
        "torch.set_num_threads(1)\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_diffusion_denovo import TINY, _config, _crystals\n"
        "from matfuse.crystals.diffusion.training import train_crystal_flow\n"
        "train_crystal_flow(_crystals(), sys.argv[1], config=_config(), architecture=TINY)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    cmd += ["--master-port", "29547", str(script), str(tmp_path / "two")]
    cmd += [os.path.dirname(__file__)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    train_crystal_flow(_crystals(), tmp_path / "one", config=_config(), architecture=TINY)

    def curve(run: str) -> list[float]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines]

    one, two = curve("one"), curve("two")
    assert len(one) == len(two) == 6
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5)
    state = json.loads((tmp_path / "two" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 6 and load_crystal_model(tmp_path / "two").meta["world_size"] == 2
    a = load_crystal_model(tmp_path / "one").denoiser.state_dict()
    b = load_crystal_model(tmp_path / "two").denoiser.state_dict()
    # 1e-4: the coordinate head's bias has a zero true gradient (velocities are mean-free),
    # so Adam turns its rounding noise into updates of that order; all else agrees to 1e-6
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
    assert sum(not torch.allclose(a[k], b[k], atol=1e-6) for k in a) <= 1
