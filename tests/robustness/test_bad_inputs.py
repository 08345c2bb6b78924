"""Bad input never crashes a batch, never loses a row, and user mistakes get one line.

Each case reproduces a finding of the robustness issue: header-less tables, POSCARs whose
counts disagree with their species, unusable labels, invisible characters in SMILES, empty
files and an output path that is a directory.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from matfuse.chem.standardize import parse_smiles
from matfuse.cli import app
from matfuse.inputs import load_input_table

runner = CliRunner()

SMILES = [
    "CCO",
    "CCN",
    "c1ccccc1",
    "CC(=O)O",
    "CCCC",
    "CCOC",
    "c1ccncc1",
    "CCCl",
    "OCCO",
    "CC(C)O",
    "C1CCCCC1",
    "CN",
    "CCC#N",
    "COC(C)=O",
    "c1ccc(O)cc1",
    "CCS",
] * 2

POSCAR = """NaCl
1.0
5.64 0 0
0 5.64 0
0 0 5.64
Na Cl
1 1
direct
0 0 0
0.5 0.5 0.5
"""


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_headerless_csv_is_refused_not_shortened(tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("".join(f"{s},{i}\n" for i, s in enumerate(SMILES)))
    with pytest.raises(ValueError, match="first line looks like data"):
        load_input_table(path)
    res = runner.invoke(app, ["featurize", str(path), "--out", str(tmp_path / "f.csv")])
    assert "add a header line" in _one_line_error(res)
    assert not (tmp_path / "f.csv").exists()
    # with a header every row is kept
    path.write_text("smiles,y\n" + "".join(f"{s},{i}\n" for i, s in enumerate(SMILES)))
    assert len(load_input_table(path)) == len(SMILES)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("1 1\n", "2 1\n"), "counts add up to 3 atoms but 2 coordinate lines"),
        (("1 1\n", "1 0\n"), "non-positive atom count"),
        (("Na Cl\n1 1", "Na Cl K\n1 1"), "3 species (Na Cl K) but 2 counts"),
        (("Na Cl\n", ""), "no species line"),
    ],
)
def test_poscar_whose_counts_disagree_is_flagged_not_misread(edit, reason):
    pytest.importorskip("pymatgen")
    from matfuse.materials.structures import parse_structures

    parsed = parse_structures([POSCAR, POSCAR.replace(*edit, 1)])
    assert parsed.structures[0].composition.reduced_formula == "NaCl"
    assert parsed.structures[1] is None and reason in parsed.errors[1]


def test_invisible_and_bidi_characters_in_smiles_are_flagged():
    parsed = parse_smiles(["\u202eCCO", "CC\u200bO", "CCO\x07", "CCO"])
    assert parsed.errors[:3] == [
        "unparsable SMILES: non-ASCII or control character U+202E",
        "unparsable SMILES: non-ASCII or control character U+200B",
        "unparsable SMILES: non-ASCII or control character U+0007",
    ]
    assert parsed.canonical[3] == "CCO"


def test_unusable_labels_are_counted_per_target(tmp_path):
    labels = ["1.5", "abc", "inf", "1e400", "", *[str(i) for i in range(len(SMILES) - 5)]]
    frame = pd.DataFrame({"smiles": SMILES, "y": labels})
    table = load_input_table(frame, targets=["y"])
    summary = table.summary()
    assert summary["unusable_labels"] == {"y": {"not_a_number": 1, "infinite": 2}}
    assert summary["labels_per_target"] == {"y": len(SMILES) - 4}  # the empty cell is missing
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "train",
            str(path),
            "--target",
            "y",
            "--encoders",
            "maccs",
            "--model",
            "rf",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["extra"]["notes"]["unusable_labels"] == {"y": {"not_a_number": 1, "infinite": 2}}


def test_empty_file_and_directory_output_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("smiles\n")
    res = runner.invoke(app, ["featurize", str(empty), "--out", str(tmp_path / "f.parquet")])
    assert "holds no rows" in _one_line_error(res)
    good = tmp_path / "good.csv"
    pd.DataFrame({"smiles": SMILES}).to_csv(good, index=False)
    res = runner.invoke(app, ["featurize", str(good), "--out", str(tmp_path)])
    assert "is a directory" in _one_line_error(res)
    res = runner.invoke(app, ["featurize", str(good), "--out", str(tmp_path / "f.xlsx")])
    assert "cannot tell the table format" in _one_line_error(res)
    res = runner.invoke(
        app, ["featurize", str(good), "--encoders", "ecfp,morgan", "--out", str(tmp_path / "f.csv")]
    )
    assert "unknown encoder 'morgan'" in _one_line_error(res)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=12))
def test_fuzzed_smiles_tables_keep_every_row(tmp_path, values):
    frame = pd.DataFrame({"smiles": values})
    table = load_input_table(frame, input_type="molecule")
    assert len(table) == len(values) == len(table.parsed.errors)
    assert all(
        (e is None) == (k is not None)
        for e, k in zip(table.parsed.errors, table.parsed.keys, strict=True)
    )


def test_an_interrupted_write_leaves_the_previous_result(tmp_path, monkeypatch):
    from matfuse.inputs.writers import write_table

    out = tmp_path / "result.csv"
    write_table(pd.DataFrame({"a": [1, 2, 3]}), out)
    before = out.read_bytes()

    def dies(self, path, *args, **kwargs):
        with open(path, "w") as handle:
            handle.write("a\n1\n")  # a clean-looking prefix, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", dies)
    with pytest.raises(KeyboardInterrupt):
        write_table(pd.DataFrame({"a": range(1000)}), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.csv"]  # no temporary left


@pytest.mark.parametrize(
    ("scale", "reason"),
    [(150.0, "cell too empty"), (1000.0, "cell too empty"), (1e30, "cell too empty")],
)
def test_huge_cells_are_refused_before_any_neighbour_list(scale, reason):
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    from matfuse.materials.structures import parse_structures

    cell = Structure(
        Lattice.cubic(3.9),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    cif = cell.to(fmt="cif").replace("3.90000000", f"{scale:.8f}")
    parsed = parse_structures([cif, cell])
    assert parsed.structures[0] is None and reason in parsed.errors[0]
    assert parsed.errors[1] is None
    # the limit is an option, for porous or molecular cells
    roomy = parse_structures([cif], max_volume_per_atom=None) if scale == 150.0 else None
    assert roomy is None or roomy.errors[0] is None


def test_negative_lattice_length_in_a_cif_is_refused():
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    from matfuse.materials.structures import parse_structures

    cif = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]).to(fmt="cif")
    bad = cif.replace("_cell_length_a   5.64000000", "_cell_length_a   -5.64000000")
    assert bad != cif
    parsed = parse_structures([bad])
    assert parsed.structures[0] is None and "left-handed cell" in parsed.errors[0]


def test_decode_bad_latent_files_are_one_line_errors_and_no_rows_is_an_empty_table(tmp_path):
    """A 0-byte file, a table without z_* columns, latents of the wrong width and a
    directory --out are refused in one line (exit 2) before any decoding; a header with no
    rows decodes to an empty table (rc 0), as featurize does with zero molecules."""
    out = str(tmp_path / "d.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in _one_line_error(runner.invoke(app, ["decode", str(empty), "--out", out]))
    no_z = tmp_path / "noz.csv"
    no_z.write_text("smiles\nCCO\n")
    res = runner.invoke(app, ["decode", str(no_z), "--out", out])
    assert "no z_* latent columns" in _one_line_error(res)
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("z_0,z_1\n0.1,0.2\n")
    res = runner.invoke(app, ["decode", str(narrow), "--out", out])
    assert "128-dimensional" in _one_line_error(res)
    res = runner.invoke(app, ["decode", str(narrow), "--out", str(tmp_path)])
    assert "is a directory" in _one_line_error(res)
    header = tmp_path / "header.csv"
    header.write_text(",".join(f"z_{i}" for i in range(128)) + "\n")
    res = runner.invoke(app, ["decode", str(header), "--out", out])
    assert res.exit_code == 0, res.output
    assert list(pd.read_csv(out).columns) == ["smiles", "error"] and len(pd.read_csv(out)) == 0


def test_results_get_the_mode_of_any_new_file_not_the_temp_files_0600(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the finished file must not stay private."""
    import os
    import stat

    from matfuse.inputs.writers import UMASK, write_table, write_text

    table = write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    text = write_text("x", tmp_path / "r.json")
    for path in (table, text):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~UMASK
