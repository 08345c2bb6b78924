"""`matfuse train` as a new user meets it: a guessed target, stated splits, a progress bar,
options checked before the data is read, warnings as one line (issue 20)."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.cli.common import err_console

runner = CliRunner()
MEASURED = "measured log solubility in mols per litre"
PREDICTED = "ESOL predicted log solubility in mols per litre"


@pytest.fixture
def esol_csv(tmp_path, smiles):
    """A file with the ESOL header: an ID, the old model's prediction, descriptors, SMILES."""
    from conftest_helpers import logp

    rng = np.random.default_rng(0)
    measured = -logp(smiles) + rng.normal(0, 0.3, len(smiles))
    n = len(smiles)
    frame = pd.DataFrame(
        {
            "Compound ID": [f"cpd{i}" for i in range(n)],
            PREDICTED: measured + rng.normal(0, 0.8, n),
            "Minimum Degree": rng.integers(1, 3, n),
            "Molecular Weight": rng.uniform(50, 400, n),
            "Number of H-Bond Donors": rng.integers(0, 4, n),
            "Number of Rings": rng.integers(0, 4, n),
            "Number of Rotatable Bonds": rng.integers(0, 8, n),
            "Polar Surface Area": rng.uniform(0, 120, n),
            MEASURED: measured,
            "smiles": smiles,
        }
    )
    path = tmp_path / "esol.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def formulas_csv(tmp_path):
    rng = np.random.default_rng(1)
    cations = ["Fe", "Co", "Ni", "Cu", "Zn", "Ti", "Mn", "Mg", "Ca", "Sr"]
    anions = ["O", "S", "N", "Cl", "F"]
    rows = [
        (f"mp-{i}", f"{rng.choice(cations)}{rng.integers(1, 3)}{rng.choice(anions)}", rng.normal())
        for i in range(80)
    ]
    path = tmp_path / "formulas.csv"
    pd.DataFrame(rows, columns=["material_id", "formula", "gap"]).to_csv(path, index=False)
    return path


def _train(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["train", *args])
    return res.exit_code, res.output


def test_train_without_target_guesses_the_measured_column(tmp_path, esol_csv):
    out = tmp_path / "model"
    code, output = _train(str(esol_csv), "--encoders", "maccs", "--model", "rf", "-o", str(out))
    assert code == 0, output
    flat = " ".join(output.split())
    assert f"target: {MEASURED} (guessed" in flat
    assert "others:" in flat and "choose with --target" in flat
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["target_names"] == [MEASURED]
    target = report["extra"]["target"]
    assert target["guessed"] is True and target["others"][-1] == PREDICTED


def test_train_warns_of_a_column_collinear_with_the_target(tmp_path, esol_csv):
    frame = pd.read_csv(esol_csv)
    frame["leak"] = 2.0 * frame[MEASURED] + 1.0
    frame.to_csv(esol_csv, index=False)
    out = tmp_path / "model"
    code, output = _train(
        str(esol_csv), "-t", MEASURED, "--encoders", "maccs", "--model", "rf", "-o", str(out)
    )
    assert code == 0, output
    flat = " ".join(output.split())
    assert "leak (r = +1.000)" in flat and "possible label leak" in flat
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["extra"]["target"]["collinear"][MEASURED][0]["column"] == "leak"


def test_element_split_states_what_it_held_out(tmp_path, formulas_csv):
    out = tmp_path / "model"
    code, output = _train(
        str(formulas_csv), "--split", "element", "--split-param", "element=Fe", "-o", str(out)
    )
    assert code == 0, output
    flat = " ".join(output.split())
    assert "target: gap (guessed" in flat
    assert "element split: test = every material containing Fe" in flat
    report = json.loads((out / "report" / "report.json").read_text())
    split = report["extra"]["split"]
    assert split["element"] == "Fe" and split["params"]["element"] == "Fe"
    assert "containing Fe" in split["description"]
    counts = split["counts"]
    assert counts["train"] > 0 and counts["test"] > 0
    assert report["counts"]["train"] == counts["train"] + counts["valid"]


@pytest.mark.parametrize(
    ("split", "params", "said"),
    [
        ("ood", ["tail=bottom", "test_size=0.2"], "the 20% smallest target values"),
        ("cluster", ["cutoff=0.4"], "Tanimoto distance cutoff 0.4"),
        ("scaffold", ["balanced=false"], "largest first"),
        ("random", [], "drawn at random (10%, seed 0)"),
    ],
)
def test_split_parameters_are_options_and_stated(tmp_path, esol_csv, split, params, said):
    out = tmp_path / "model"
    extra = [a for p in params for a in ("--split-param", p)]
    code, output = _train(
        str(esol_csv), "-t", MEASURED, "--encoders", "maccs", "--model", "rf",
        "--split", split, *extra, "-o", str(out),
    )  # fmt: skip
    assert code == 0, output
    assert said in " ".join(output.split())
    report = json.loads((out / "report" / "report.json").read_text())
    assert said in report["extra"]["split"]["description"]


def test_splitters_listing_names_the_options():
    res = runner.invoke(app, ["splitters"])
    assert res.exit_code == 0
    flat = " ".join(res.output.split())
    for option in ("element='O'", "tail='top'", "cutoff=0.6", "balanced=True"):
        assert option in flat
    assert "``" not in res.output and ":meth:" not in res.output


def test_train_progress_names_each_stage(tmp_path, esol_csv):
    out = tmp_path / "model"
    res = runner.invoke(
        app,
        ["-v", "train", str(esol_csv), "-t", MEASURED, "-t", "Polar Surface Area",
         "--encoders", "maccs,rdkit2d", "--model", "rf", "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    order = [
        "encoding maccs (1/2)",
        "encoding rdkit2d (2/2)",
        f"fitting {MEASURED} with rf (1/2)",
        "fitting Polar Surface Area with rf (2/2)",
        "predicting the test rows",
    ]
    positions = [flat.index(text) for text in order]
    assert positions == sorted(positions)


@pytest.mark.parametrize("quiet", [False, True])
def test_train_progress_bar_on_a_terminal(tmp_path, esol_csv, monkeypatch, quiet):
    monkeypatch.setattr(err_console, "_force_terminal", True)  # stderr "is" a terminal
    monkeypatch.setattr(err_console, "is_interactive", True)
    flags = ["-q"] if quiet else []
    res = runner.invoke(
        app,
        [*flags, "train", str(esol_csv), "-t", MEASURED, "--encoders", "maccs",
         "--model", "rf", "-o", str(tmp_path / "model")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    shown = "encoding maccs (1/1)" in res.output and "fitting" in res.output
    assert shown is not quiet


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--encoders", "ecfp,morgan"], "unknown encoder 'morgan'; choose from"),
        (["--encoders", "composition"], "cannot read molecule inputs; use encoders of modality"),
        (["--model", "forest"], "unknown model 'forest'; choose from"),
        (["--split", "element"], "does not apply to molecule inputs; choose from"),
        (["--split", "scaffold", "--split-param", "cut=1"], "accepted:"),
    ],
)
@pytest.mark.parametrize("command", ["train", "benchmark", "featurize"])
def test_bad_options_are_one_line_before_the_data_is_read(
    tmp_path, esol_csv, monkeypatch, command, args, said
):
    if command == "featurize" and args[0] != "--encoders":
        pytest.skip("featurize takes no model or split")
    import matfuse.inputs.table as table_module

    def refuse(*a, **k):
        raise AssertionError("the data was read before the options were checked")

    monkeypatch.setattr(table_module, "load_input_table", refuse)
    monkeypatch.setattr("matfuse.inputs.load_input_table", refuse)
    monkeypatch.setattr("matfuse.workflow.data.load_input_table", refuse)
    target = [] if command == "featurize" else ["-t", MEASURED]
    out = tmp_path / ("out.json" if command == "benchmark" else "out.csv")
    if command == "train":
        out = tmp_path / "model"
    res = runner.invoke(app, [command, str(esol_csv), *target, *args, "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert said in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) <= 3  # one line, wrapped at 80 columns


def test_library_warnings_are_one_line_without_a_source_path(tmp_path, esol_csv, monkeypatch):
    import matfuse.workflow

    real = matfuse.workflow.fit_and_report

    def noisy(*args, **kwargs):
        warnings.warn("something the user should know", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(matfuse.workflow, "fit_and_report", noisy)
    out = tmp_path / "model"
    code, output = _train(
        str(esol_csv), "-t", MEASURED, "--encoders", "maccs", "--model", "rf", "-o", str(out)
    )
    assert code == 0, output
    assert "something the user should know" in output
    assert "UserWarning" not in output and ".py:" not in output
