"""The crystal mode's "Sample a learned generator" task without a browser.

A tiny de novo generator (four perovskites, six steps, as ``tests/crystals/
test_diffusion_denovo.py`` makes one) is trained once per module and sampled with a few ODE
steps, so these take seconds; the browser walk in ``test_e2e_materials.py`` samples the
shipped ``perov5`` model.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")
pytest.importorskip("pymatgen", reason="crystal generation needs the materials extra")
torch = pytest.importorskip("torch")

from pymatgen.core import Lattice, Structure  # noqa: E402

from matfuse.app import crystal_sampling as cs  # noqa: E402
from matfuse.app.crystal_design import zip_run  # noqa: E402
from matfuse.app.generate_results import run_in_thread  # noqa: E402

SPECIES = [("Sr", "Ti", "O"), ("Ba", "Ti", "O"), ("Ca", "Zr", "O"), ("K", "Nb", "O")]
STEPS = 4  # ODE steps: enough to make cells, few enough to take milliseconds


def _perovskite(a: float, sp: tuple[str, str, str]) -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [sp[0], sp[1], sp[2], sp[2], sp[2]], coords)


def _train(out, with_property: bool):
    from matfuse.crystals.diffusion.data import crystal_set_from_structures
    from matfuse.crystals.diffusion.model import DenoiserConfig
    from matfuse.crystals.diffusion.training import TrainConfig, train_crystal_flow

    crystals = crystal_set_from_structures(
        [_perovskite(3.8 + 0.1 * i, sp) for i, sp in enumerate(SPECIES)]
    )
    if with_property:
        crystals.properties = np.array([[-0.5], [0.2], [np.nan], [1.0]])
        crystals.property_names = ["heat_ref"]
    config = TrainConfig(batch_size=4, max_steps=6, checkpoint_every=3, warmup_steps=2)
    tiny = DenoiserConfig(hidden=16, layers=2, n_frequencies=3, time_dim=8, type_head=True)
    train_crystal_flow(crystals, out, config=config, architecture=tiny, name=out.name)
    return str(out)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Directories of a tiny de novo model with a ``heat_ref`` condition and one without."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sampling-models")
    yield {
        "conditioned": _train(root / "tiny-cond", True),
        "plain": _train(root / "tiny-plain", False),
    }
    torch.set_num_threads(threads)


def _request(model, mode=cs.DE_NOVO, n=6, seed=0, **kw):
    return cs.make_sample_request(
        model,
        mode,
        kw.pop("formula", "SrTiO3"),
        n,
        seed,
        steps=STEPS,
        **kw,
    )


def test_the_registry_offers_the_shipped_generator():
    assert ("perov5", "perov5") in cs.model_choices()


def test_de_novo_sampling_writes_the_cli_outputs_and_a_table(models, tmp_path):
    request = _request(models["conditioned"], n=6)
    assert request.formula is None and request.guidance is None  # no target, no scale
    reports = []
    outcome = cs.run_sampling(request, tmp_path, on_progress=reports.append)
    assert [r.split(" ")[0] for r in reports] == ["loading", "sampling", "writing"]
    table = outcome.table
    assert len(table) == 6 and table["valid"].dtype == bool
    assert outcome.out_dir == tmp_path / request.run_name()
    csv = pd.read_csv(outcome.out_dir / "candidates.csv")
    assert len(csv) == 6 and csv["cif"].notna().all()
    assert len(list((outcome.out_dir / "cifs").glob("*.cif"))) == 6
    shown = cs.shown_sample_table(table)
    assert {"formula", "spacegroup", "valid", "problem", "smact_valid", "origin"} <= set(
        shown.columns
    )
    assert "cif" not in shown.columns and "energy_per_atom" not in shown.columns
    assert shown["origin"].str.contains(":de-novo:seed=0:").all()
    n_valid = int(table["valid"].sum())
    text = cs.sample_summary(outcome, 1.0)
    assert f"6 structures de novo from **{request.model}**" in text
    assert f"**{n_valid} valid** ({n_valid / 6:.0%})" in text
    first = cs.first_valid_structure(table)
    if n_valid:
        index, structure = first
        assert index == int(table[table["valid"]]["index"].iloc[0])
        assert (
            structure.composition.reduced_formula == table.set_index("index").loc[index, "formula"]
        )
    else:
        assert first is None
    archive = zipfile.ZipFile(zip_run(outcome.out_dir, tmp_path / "run.zip"))
    assert "candidates.csv" in archive.namelist()


def test_the_same_seed_gives_the_same_table_and_another_seed_another(models, tmp_path):
    first = cs.run_sampling(_request(models["conditioned"], seed=5), tmp_path / "a").table
    again = cs.run_sampling(_request(models["conditioned"], seed=5), tmp_path / "b").table
    other = cs.run_sampling(_request(models["conditioned"], seed=6), tmp_path / "c").table
    columns = ["cif", "formula", "valid", "problem", "smact_valid"]
    drop = ["seconds"]  # CPU time, the one column that is not a function of the settings
    pd.testing.assert_frame_equal(first.drop(columns=drop), again.drop(columns=drop))
    assert list(first["cif"]) != list(other["cif"])
    assert set(columns) <= set(first.columns)
    assert _request("m", seed=5).run_name() != _request("m", seed=6).run_name()
    assert _request("m", seed=5).run_name() == _request("m", seed=5).run_name()


def test_csp_mode_keeps_the_formula(models, tmp_path):
    request = _request(models["conditioned"], mode=cs.CSP, formula=" Sr Ti O3 ", n=3)
    assert request.formula == "SrTiO3" and request.mode == "csp"
    outcome = cs.run_sampling(request, tmp_path)
    assert list(outcome.table["formula"]) == ["SrTiO3"] * 3
    assert outcome.table["origin"].str.contains(":csp:").all()
    assert "3 structures of **SrTiO3**" in cs.sample_summary(outcome, 0.5)
    assert request.run_name().startswith("sample-SrTiO3-")


def test_de_novo_options_restrict_the_cells(models, tmp_path):
    request = _request(models["conditioned"], n=4, elements=" Sr, O ", n_atoms=3)
    assert request.elements == ("Sr", "O") and request.n_atoms == 3
    # the page sends an empty number as 0: the atom count is then drawn as in training
    assert _request("m", n_atoms=0).n_atoms is None and _request("m").n_atoms is None
    table = cs.run_sampling(request, tmp_path).table
    assert (table["n_atoms"] == 3).all()
    for cif in table["cif"]:
        elements = {e.symbol for e in Structure.from_str(cif, fmt="cif").composition}
        assert elements <= {"Sr", "O"}


def test_targets_pass_through_and_guidance_counts_only_with_one(models, tmp_path):
    assert cs.split_targets("heat_ref=-0.5, chemical_system=Sr,Ti,O\nspace_group=Pm-3m") == [
        "heat_ref=-0.5",
        "chemical_system=Sr,Ti,O",
        "space_group=Pm-3m",
    ]
    parsed = _request("m", targets="heat_ref=-0.5\nchemical_system=Sr-Ti-O", guidance=2)
    assert dict(parsed.conditions) == {"heat_ref": -0.5, "chemical_system": "Sr-Ti-O"}
    assert parsed.guidance == 2.0
    assert _request("m", targets="", guidance=3).guidance is None
    request = _request(models["conditioned"], n=4, targets="heat_ref=-0.5", guidance=1.5)
    outcome = cs.run_sampling(request, tmp_path)
    free = cs.run_sampling(_request(models["conditioned"], n=4), tmp_path).table
    assert len(outcome.table) == 4 and list(outcome.table["cif"]) != list(free["cif"])
    assert "guided to heat_ref=-0.5 at scale 1.5" in cs.sample_summary(outcome, 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": cs.CSP, "formula": "NaXx"}, "NaXx"),
        ({"mode": cs.CSP, "formula": " "}, "Type a formula"),
        ({"elements": "Sr,Qq"}, "unknown element 'Qq'"),
        ({"n": 0}, "between 1 and 500"),
        ({"n": 501}, "between 1 and 500"),
        ({"n_atoms": 99}, "between 1 and 40"),
        ({"targets": "heat_ref"}, "write NAME=VALUE"),
        ({"targets": "heat_ref=1", "guidance": -1}, "must be 0 or more"),
        ({"n": 51, "relax": True}, "relax at most 50"),
    ],
)
def test_bad_requests_are_one_line_user_messages(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        _request("perov5", **kwargs)
    status = cs.error_status(info.value)
    assert status.startswith("**Cannot sample:**") and "\n" not in status
    assert "Traceback" not in status and "--condition" not in status


def test_what_the_model_cannot_do_is_a_message_from_the_worker(models, tmp_path):
    """An unknown condition or a model without any: the worker's error is one status line."""
    import threading

    for model, targets, message in [
        (models["conditioned"], "band_gap=1", "no condition band_gap (it knows: heat_ref)"),
        (models["plain"], "heat_ref=1", "trained without property conditions"),
    ]:
        request = _request(model, n=2, targets=targets)
        thread, reports = run_in_thread(
            cs.run_sampling, threading.Event(), request=request, root=tmp_path
        )
        thread.join(60)
        kinds = []
        while not reports.empty():
            kinds.append(reports.get())
        kind, err = kinds[-1]
        assert kind == "error" and isinstance(err, ValueError)
        status = cs.error_status(err)
        assert message in status and "\n" not in status and "Traceback" not in status
    assert "**Sampling failed:** RuntimeError: boom" == cs.error_status(RuntimeError("boom"))


def test_the_page_shows_the_first_valid_structure_and_the_zip(models, tmp_path):
    from matfuse.app.crystal_sampling_form import _sample_outputs
    from matfuse.app.state import SessionState

    outcome = cs.run_sampling(_request(models["conditioned"], mode=cs.CSP, n=3), tmp_path)
    outcome.table.loc[:, "valid"] = [False, True, True]  # the first valid is row 1
    session = SessionState()
    try:
        status, image, model3d, info, table, download = _sample_outputs(outcome, 1.0, session)
        assert "**2 valid** (67%)" in status
        assert image.endswith(".png") and model3d.endswith(".glb")
        assert "candidate 1" in info and "SrTiO3" in info
        assert table.visible and len(table.value["data"]) == 3
        names = zipfile.ZipFile(download.value["path"]).namelist()
        assert "candidates.csv" in names and not any(n.startswith("views/") for n in names)
    finally:
        session.cleanup()


def test_the_crystal_mode_offers_the_sampling_task():
    import gradio as gr

    from matfuse.app import crystal_mode
    from matfuse.app.state import new_session

    with gr.Blocks() as demo:
        built = crystal_mode.build(gr.State(new_session))
    radios = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "cgen-task"]
    assert cs.SAMPLE_TASK in [c[0] for c in radios[0].choices]
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"csample-model", "csample-run", "csample-status", "csample-table"} <= ids
    assert built.model_target is not None and len(built.refreshed) == 2
