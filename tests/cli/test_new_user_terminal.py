"""Terminal output at 80 columns: listings, help, relax and demo tables (issue 20)."""

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from rich.console import Console
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.cli.common import frame_table

runner = CliRunner()


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERMINAL_WIDTH", "80")


def _lines(output: str) -> list[str]:
    return output.splitlines()


def test_encoders_listing_fits_and_keeps_every_name():
    from matfuse.encoders import list_encoders

    res = runner.invoke(app, ["encoders"])
    assert res.exit_code == 0
    assert max(map(len, _lines(res.output))) <= 80
    cells = {line.split("│")[1].strip() for line in _lines(res.output) if line.count("│") > 2}
    for spec in list_encoders():
        assert spec.name in cells  # whole, not "structure-descript…"
    assert "…" not in res.output


@pytest.mark.parametrize(
    "command", ["train", "benchmark", "featurize", "relax", "predict", "screen", "csp"]
)
def test_help_is_plain_prose_and_choices_are_whole(command):
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0
    assert "``" not in res.output and ":meth:" not in res.output
    assert "…" not in res.output  # no truncated option names or choices
    assert max(map(len, _lines(res.output))) <= 80


def test_train_help_lists_every_split():
    from matfuse.evaluate.splitters import list_splitters

    res = runner.invoke(app, ["train", "--help"])
    flat = " ".join(res.output.replace("│", " ").split())
    for name in list_splitters():
        assert f"{name}," in flat or f"{name} (" in flat


def test_frame_table_wraps_cells_not_rows():
    frame = pd.DataFrame(
        {
            "name": ["paracetamol", "not a molecule"],
            "canonical smiles": ["CC(=O)Nc1ccc(O)cc1", None],
            "pred_SOL": [-1.234567, np.nan],
            "error": [None, "unparsable SMILES: a very long reason that has to wrap somewhere"],
        }
    )
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(frame_table(frame, digits=2))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    assert "None" not in text and "NaN" not in text and "nan" not in text
    assert "-1.23" in text and "paracetamol" in text


def _cubic() -> Structure:
    return Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _fake_chgnet(monkeypatch, relaxed: Structure) -> None:
    """Relaxation without the potential: every structure relaxes to ``relaxed``."""
    import matfuse.materials.energy as energy

    def energies(structures, **kw):
        n = len(structures.structures)
        return np.full(n, -3.0), list(structures.structures), [None] * n

    def relax(structures, **kw):
        return [
            energy.RelaxResult(relaxed.copy(), -3.5, True, 12)
            if s is not None
            else energy.RelaxResult(None, float("nan"), False, 0, e)
            for s, e in zip(structures.structures, structures.errors, strict=True)
        ]

    monkeypatch.setattr(energy, "load_chgnet", lambda: None)
    monkeypatch.setattr(energy, "energies_per_atom", energies)
    monkeypatch.setattr(energy, "relax_structures", relax)


def test_relax_summary_warns_when_symmetry_drops_and_volume_grows(tmp_path, monkeypatch):
    triclinic = Structure(
        Lattice.from_parameters(4.3, 4.45, 4.6, 86, 94, 99),
        ["Cs", "Cl"],
        [[0, 0, 0], [0.53, 0.47, 0.51]],
    )
    _fake_chgnet(monkeypatch, triclinic)
    cif = tmp_path / "cscl.cif"
    _cubic().to(filename=str(cif))
    out = tmp_path / "relaxed"
    res = runner.invoke(app, ["relax", str(cif), "--out", str(out)])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    space_group = next(line for line in _lines(res.output) if "space group" in line)
    assert "Pm-3m (221)" in space_group and "P1 (1)" in space_group
    assert "volume (Å³)" in res.output and "a b c" in res.output
    assert (
        "warning: cscl: symmetry dropped: Pm-3m (221) -> P1 (1)" in flat
        and "(cubic -> triclinic)" in flat
    )
    assert "warning: cscl: volume changed by +" in flat
    assert max(map(len, _lines(res.output))) <= 80
    summary = pd.read_csv(out / "summary.csv")
    row = summary.iloc[0]
    assert row["spacegroup_initial"] == "Pm-3m (221)" and row["spacegroup_relaxed"] == "P1 (1)"
    assert row["volume_relaxed"] > 1.1 * row["volume_initial"]
    assert row["lattice_initial"].startswith("4.100 4.100 4.100 Å, 90.0 90.0 90.0°")
    assert "symmetry dropped" in row["warning"]


def test_relax_summary_is_quiet_when_the_cell_keeps_its_shape(tmp_path, monkeypatch):
    slightly = Structure(Lattice.cubic(4.15), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    _fake_chgnet(monkeypatch, slightly)
    cif = tmp_path / "cscl.cif"
    _cubic().to(filename=str(cif))
    res = runner.invoke(app, ["relax", str(cif), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output
    space_group = next(line for line in _lines(res.output) if "space group" in line)
    assert space_group.count("Pm-3m (221)") == 2  # before and after
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert summary.loc[0, "spacegroup_relaxed"] == "Pm-3m (221)"
    assert pd.isna(summary.loc[0, "warning"])


def test_demo_prints_tables_at_the_terminal_width(tmp_path, monkeypatch, smiles):
    import matfuse.demo as demo
    from conftest_helpers import logp
    from matfuse.inputs import load_input_table
    from matfuse.workflow import SplitData

    def small():
        frame = pd.DataFrame({"smiles": smiles, demo.TARGET: -logp(smiles)})
        table = load_input_table(frame, input_type="molecule", targets=[demo.TARGET])
        n = len(smiles)
        return SplitData(
            parsed=table.parsed,
            Y=table.target_matrix(),
            target_names=[demo.TARGET],
            train=np.arange(30),
            valid=np.arange(0),
            test=np.arange(30, n),
            split_name="predefined",
            description=f"the provided split: 30 train, {n - 30} test rows",
        )

    monkeypatch.setattr(demo, "load_solubility", small)
    monkeypatch.setattr(demo, "DEFAULT_ENCODERS", ("maccs",))
    monkeypatch.setattr(demo, "DEMO_ENCODERS", ["maccs", "ecfp"])
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    stdout = res.stdout
    assert max(map(len, _lines(stdout))) <= 80
    assert "Predictions for new molecules" in stdout
    assert "None" not in stdout and "NaN" not in stdout
    assert "not a molecule" in stdout
