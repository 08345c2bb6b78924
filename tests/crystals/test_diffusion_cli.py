"""``crystal-train`` / ``crystal-generate``: one-line errors and the csp output contract."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure
from typer.testing import CliRunner

from matfuse.cli import app

runner = CliRunner()


def _one_error_line(result, message):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    rows = [
        Structure(Lattice.cubic(a), [x, "Ti", "O", "O", "O"], coords).to(fmt="cif")
        for a, x in ((3.9, "Sr"), (4.0, "Ba"), (3.8, "Ca"))
    ]
    path = tmp_path_factory.mktemp("data") / "cells.csv"
    pd.DataFrame({"cif": [*rows, "not a cif"], "id": [1, 2, 3, 4]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    args = [
        "crystal-train",
        str(table),
        "--out",
        str(out),
        "--max-steps",
        "3",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--batch-size",
        "2",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 rows skipped" in result.output
    return out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--formula", "Xx2O"], "unknown element(s): Xx"),
        (["--formula", "MgAl2O4", "--z", "10"], "over the limit of 40"),
        (["--formula", "SrTiO3", "--model", "no-such-model"], "unknown crystal model"),
        (["--formula", "SrTiO3", "--n", "0"], "at least 1 structure"),
    ],
)
def test_generate_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "gen"
    _one_error_line(runner.invoke(app, ["crystal-generate", *args, "--out", str(out)]), message)
    assert not out.exists()


def test_train_bad_input_is_one_line_and_exit_2(tmp_path, table, trained):
    _one_error_line(
        runner.invoke(
            app, ["crystal-train", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]
        ),
        "no such file",
    )
    no_cif = tmp_path / "x.csv"
    pd.DataFrame({"formula": ["NaCl"]}).to_csv(no_cif, index=False)
    _one_error_line(
        runner.invoke(app, ["crystal-train", str(no_cif), "--out", str(tmp_path / "o")]),
        "no 'cif' column",
    )
    _one_error_line(
        runner.invoke(app, ["crystal-train", str(table), "--out", str(trained)]), "--resume"
    )


def test_generate_writes_the_csp_output_contract(trained, tmp_path):
    out = tmp_path / "gen"
    args = [
        "crystal-generate",
        "--model",
        str(trained),
        "--formula",
        "BaTiO3",
        "--n",
        "3",
        "--seed",
        "1",
        "--steps",
        "4",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "candidates.csv")
    assert len(table) == 3
    for column in ("cif", "cif_file", "formula", "spacegroup", "origin", "valid"):
        assert column in table.columns
    for cif, name in zip(table["cif"], table["cif_file"], strict=True):
        s = Structure.from_str(cif, fmt="cif")
        assert s.composition == Composition("BaTiO3")
        assert (out / name).read_text() == cif
    again = tmp_path / "again"
    assert runner.invoke(app, [*args[:-1], str(again)]).exit_code == 0
    assert pd.read_csv(again / "candidates.csv")["cif"].tolist() == table["cif"].tolist()


@pytest.fixture(scope="module")
def trained_de_novo(table, tmp_path_factory):
    frame = pd.read_csv(table)
    frame["heat_ref"] = [0.1, "n/a", 0.9, 0.5]  # a non-numeric cell is "unknown", not fatal
    path = tmp_path_factory.mktemp("data") / "labelled.csv"
    frame.to_csv(path, index=False)
    out = tmp_path_factory.mktemp("runs") / "joint"
    args = ["crystal-train", str(path), "--out", str(out), "--max-steps", "3", "--hidden", "16"]
    args += ["--layers", "1", "--batch-size", "2", "--de-novo", "--condition-on", "heat_ref"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_generate_de_novo_without_formula(trained_de_novo, tmp_path):
    out = tmp_path / "dn"
    args = ["crystal-generate", "--model", str(trained_de_novo), "--n", "4", "--seed", "0"]
    args += ["--steps", "3", "--elements", "Sr,Ti,O", "--condition", "heat_ref=0.2"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "candidates.csv")
    assert len(table) == 4 and "smact_valid" in table.columns
    assert all(o.startswith("diffusion:joint:de-novo:") for o in table["origin"])
    for cif in table["cif"]:
        s = Structure.from_str(cif, fmt="cif")
        assert {e.symbol for e in s.composition.elements} <= {"Sr", "Ti", "O"}
    # valid in de novo mode means no overlap and a charge-balanced composition
    assert not (table["valid"] & ~table["smact_valid"]).any()
    # a batch size is part of the seed: the same settings give the same table again
    small = [*args, "--batch-size", "3"]
    for name in ("b1", "b2"):
        assert runner.invoke(app, [*small, "--out", str(tmp_path / name)]).exit_code == 0
    first, second = (pd.read_csv(tmp_path / n / "candidates.csv") for n in ("b1", "b2"))
    assert len(first) == 4 and first["cif"].tolist() == second["cif"].tolist()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--condition", "heat_ref"], "write NAME=VALUE"),
        (["--condition", "band_gap=1"], "no condition band_gap"),
        (["--elements", "Sr,Qq"], "unknown element 'Qq'"),
        (["--formula", "SrTiO3", "--elements", "Sr"], "for de novo mode"),
        (["--guidance", "-1"], "must be >= 0"),
        (["--batch-size", "0"], "need at least 1"),
        (["--condition", "heat_ref=abc"], "not a number"),
    ],
)
def test_generate_de_novo_bad_input_is_one_line(trained_de_novo, tmp_path, extra, message):
    args = ["crystal-generate", "--model", str(trained_de_novo), "--n", "2", *extra]
    _one_error_line(runner.invoke(app, [*args, "--out", str(tmp_path / "o")]), message)


def test_csp_only_model_refuses_de_novo_and_conditions(trained, tmp_path):
    args = ["crystal-generate", "--model", str(trained), "--out", str(tmp_path / "o")]
    _one_error_line(runner.invoke(app, args), "CSP only")
    cond = [*args, "--formula", "SrTiO3", "--condition", "heat_ref=1"]
    _one_error_line(runner.invoke(app, cond), "without property conditions")


def test_export_names_the_model_sets_its_steps_and_keeps_the_card(trained_de_novo, tmp_path):
    out = tmp_path / "shipped"
    out.mkdir()
    (out / "MODEL_CARD.md").write_text("# card\n")
    args = ["crystal-export", str(trained_de_novo), str(out), "--name", "mine", "--steps", "7"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    from matfuse.crystals.diffusion.persistence import load_crystal_model

    model = load_crystal_model(out)
    assert model.name == "mine" and model.sampling["steps"] == 7
    assert (out / "MODEL_CARD.md").read_text() == "# card\n"
    _one_error_line(
        runner.invoke(app, ["crystal-export", str(tmp_path / "nothing"), str(out)]),
        "unknown crystal model",
    )
