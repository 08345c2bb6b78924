"""``matfuse screen`` on every kind of library (issue 18), an objective spec, and
``matfuse predict``/``featurize`` on the same engine.

Each library kind is screened on an in-process cluster and compared with what the
single-process ``matfuse predict`` gives for the same rows.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from typer.testing import CliRunner

from matfuse.cli import app
from matfuse.generate.objectives import load_objective
from matfuse.pipeline import PropertyModel
from matfuse.workflow.screen import ROW_ID, screen

runner = CliRunner()

TRAIN = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1",
    "Nc1ccccc1", "Clc1ccccc1", "c1ccncc1", "C1CCCCC1", "OC1CCCCC1", "C1CCNCC1", "CCN(CC)CC",
    "CC(=O)O", "CCOC(C)=O", "CC#N", "ClCCl", "O=C1CCCCC1",
]  # fmt: skip
SALTS = [("Na", "Cl", 5.64), ("K", "Cl", 6.29), ("Li", "F", 4.03), ("Mg", "O", 4.21)]
SALTS += [("Ca", "O", 4.81), ("Na", "F", 4.63), ("K", "Br", 6.60), ("Li", "Cl", 5.13)]
SALTS += [("Ba", "O", 5.52), ("Sr", "O", 5.16), ("Rb", "Cl", 6.58), ("Cs", "F", 6.01)]


@pytest.fixture(scope="module")
def mol_model(tmp_path_factory, fit_logp_model):
    return fit_logp_model(tmp_path_factory.mktemp("libs") / "mol-model", TRAIN, 64)


def _rocksalt(a: str, b: str, lattice: float):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


@pytest.fixture(scope="module")
def structures():
    return [_rocksalt(a, b, c) for a, b, c in SALTS]


@pytest.fixture(scope="module")
def structure_model(tmp_path_factory, structures):
    directory = tmp_path_factory.mktemp("libs") / "structure-model"
    model = PropertyModel(encoders=["composition"], model="linear", input_type="structure")
    y = np.array([c for _, _, c in SALTS])
    model.fit(structures, y, target_names=["a"]).save(directory)
    return directory


def _predict_alone(model_dir, path, tmp_path):
    pred = tmp_path / "alone.csv"
    res = runner.invoke(app, ["predict", str(model_dir), str(path), "--out", str(pred)])
    assert res.exit_code in (0, 3), res.output
    return pd.read_csv(pred)


def test_sdf_in_partitions_with_a_broken_record(mol_model, client, read_predictions, tmp_path):
    path = tmp_path / "lib.sdf"
    with Chem.SDWriter(str(path)) as writer:
        for i, smi in enumerate(TRAIN[:9]):
            mol = Chem.MolFromSmiles(smi)
            mol.SetProp("_Name", f"mol{i}")
            mol.SetIntProp("rank", i)
            if i == 4:
                mol.SetProp("note", "only here")
            writer.write(mol)
    text = path.read_text().split("$$$$\n")
    text.insert(3, "broken\n  junk\n\nnot a mol block\nM  END\n")
    path.write_text("$$$$\n".join(text))
    out = tmp_path / "out"
    result = screen(mol_model, path, out, partition_rows=4, client=client)
    frame = read_predictions(out)
    assert result.rows == 10 and result.partitions == 3 and result.invalid == 1
    assert frame[ROW_ID].tolist() == list(range(10))
    assert frame["error"].notna().tolist() == [i == 3 for i in range(10)]
    names = [f"mol{i}" for i in range(9)]
    assert frame["name"].tolist() == [*names[:3], "broken", *names[3:]]  # its title is kept
    assert frame["note"].dropna().tolist() == ["only here"]  # a property of one record
    assert frame["rank"].dropna().tolist() == list(range(9))
    alone = _predict_alone(mol_model, path, tmp_path)  # read_sdf, in one process
    np.testing.assert_allclose(frame["pred_logp"], alone["pred_logp"], rtol=1e-12)


@pytest.mark.parametrize("suffix", [".smi.gz", ".parquet", ".tsv"])
def test_smi_gz_parquet_and_tsv(mol_model, client, read_predictions, tmp_path, suffix):
    path = tmp_path / f"lib{suffix}"
    smiles = [*TRAIN[:10], "C1CC(", *TRAIN[10:]]
    if suffix == ".smi.gz":
        with gzip.open(path, "wt") as handle:
            handle.write("".join(f"{s} n{i}\n" for i, s in enumerate(smiles)))
    else:
        frame = pd.DataFrame({"smiles": smiles, "n": range(len(smiles))})
        frame["n"] = frame["n"].astype(float).where(frame["n"] != 17)  # a gap in one part
        if suffix == ".parquet":
            frame.to_parquet(path, row_group_size=5)
        else:
            frame.to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    result = screen(mol_model, path, out, partition_rows=6, client=client)
    frame = read_predictions(out)
    assert result.rows == 21 and result.invalid == 1
    assert frame[ROW_ID].tolist() == list(range(21))
    assert frame["smiles"].tolist() == smiles
    kinds = {str(pd.read_parquet(p).dtypes.to_dict()) for p in (out / "predictions").iterdir()}
    assert len(kinds) == 1  # one schema in every partition
    if suffix != ".smi.gz":  # predict reads .smi.gz as text; compare the tables it reads
        alone = _predict_alone(mol_model, path, tmp_path)
        np.testing.assert_allclose(frame["pred_logp"], alone["pred_logp"], rtol=1e-12)


def test_structures_as_a_cif_column_and_as_a_directory(
    structure_model, structures, client, read_predictions, tmp_path
):
    table = tmp_path / "cifs.csv"
    cifs = [s.to(fmt="cif") for s in structures]
    pd.DataFrame({"id": range(12), "cif": cifs}).to_csv(table, index=False)
    out = tmp_path / "out-table"
    result = screen(structure_model, table, out, partition_rows=5, client=client)
    from_table = read_predictions(out)
    assert result.rows == 12 and result.invalid == 0
    alone = _predict_alone(structure_model, table, tmp_path)
    np.testing.assert_allclose(from_table["pred_a"], alone["pred_a"], rtol=1e-12)
    directory = tmp_path / "cells"
    directory.mkdir()
    for i, s in enumerate(structures[:6]):
        s.to(filename=str(directory / f"s{i:02d}.cif"))
    structures[6].to(filename=str(directory / "POSCAR_x"), fmt="poscar")
    (directory / "s99.cif").write_text("data_broken\n_cell_length_a oops\n")
    out = tmp_path / "out-dir"
    result = screen(structure_model, directory, out, partition_rows=3, client=client)
    frame = read_predictions(out)
    # sorted by name, one row per file
    assert frame["name"].tolist() == ["POSCAR_x", *[f"s{i:02d}.cif" for i in range(6)], "s99.cif"]
    assert result.invalid == 1 and frame["error"].notna().tolist() == [False] * 7 + [True]
    expected = from_table["pred_a"].iloc[[6, 0, 1, 2, 3, 4, 5]].to_numpy()
    np.testing.assert_allclose(frame["pred_a"][:7], expected, rtol=1e-9)


def test_compositions(structure_model, client, read_predictions, tmp_path):
    from matfuse.pipeline import PropertyModel

    model_dir = tmp_path / "comp-model"
    formulas = [f"{a}{b}" for a, b, _ in SALTS]
    PropertyModel(encoders=["composition"], model="linear", input_type="composition").fit(
        formulas, np.array([c for _, _, c in SALTS]), target_names=["a"]
    ).save(model_dir)
    path = tmp_path / "formulas.csv.gz"
    with gzip.open(path, "wt") as handle:
        pd.DataFrame({"formula": [*formulas, "Xx2O"]}).to_csv(handle, index=False)
    result = screen(model_dir, path, tmp_path / "out", partition_rows=5, client=client, top=3)
    assert (result.rows, result.invalid, result.partitions) == (13, 1, 3)
    top = pd.read_csv(tmp_path / "out" / "top.csv")
    frame = read_predictions(tmp_path / "out")
    assert top["pred_a"].tolist() == sorted(frame["pred_a"].dropna(), reverse=True)[:3]


def test_objective_spec_ranks_top_csv(mol_model, client, read_predictions, tmp_path):
    spec = tmp_path / "objective.yaml"
    spec.write_text(
        "terms:\n"
        f"  - property: model\n    path: {mol_model}\n    min: 0.5\n    max: 1.5\n"
        "  - property: qed\n"
    )
    library = tmp_path / "lib.csv"
    pd.DataFrame({"smiles": [*TRAIN, "C1CC("]}).to_csv(library, index=False)
    out = tmp_path / "out"
    args = ["screen", str(mol_model), str(library), "--out", str(out), "--top", "4"]
    res = runner.invoke(app, [*args, "--partition-rows", "6", "--objective", str(spec)])
    assert res.exit_code == 3, res.output  # one invalid row
    frame = read_predictions(out)
    valid = frame["error"].isna()
    # the same scores as `matfuse generate` gives these molecules with this spec
    expected = load_objective(spec).evaluate(frame["smiles"][valid].tolist())
    for column in ("logp_d", "qed_d", "qed"):
        np.testing.assert_allclose(frame[column][valid], expected[column], rtol=1e-9)
    assert 0 < frame["logp_d"][valid].min() < frame["logp_d"][valid].max() < 1  # p, not 0/1
    expected = np.sqrt(frame["logp_d"] * frame["qed_d"])  # geometric mean of two terms
    np.testing.assert_allclose(frame["objective"][valid], expected[valid])
    assert frame["objective"][~valid].isna().all()
    top = pd.read_csv(out / "top.csv")
    ranked = frame[valid].sort_values(["objective", ROW_ID], ascending=[False, True])
    assert top[ROW_ID].tolist() == ranked[ROW_ID].head(4).tolist()
    assert frame.columns[-1] == "error"
    # another objective in the same directory would mix scores: refused
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"terms": [{"property": "qed"}]}))
    res = runner.invoke(app, [*args, "--partition-rows", "6", "--objective", str(other)])
    assert res.exit_code == 2 and "objective" in res.output
    pareto = tmp_path / "pareto.json"
    pareto.write_text(json.dumps({"aggregate": "pareto", "terms": [{"property": "qed"}]}))
    res = runner.invoke(app, [*args[:4], str(tmp_path / "o2"), "--objective", str(pareto)])
    assert res.exit_code == 2 and "pareto" in res.output


def test_predict_and_featurize_with_workers_match_one_process(mol_model, tmp_path):
    library = tmp_path / "lib.csv"
    pd.DataFrame({"id": range(21), "smiles": [*TRAIN, "C1CC("]}).to_csv(library, index=False)
    alone = tmp_path / "alone.csv"
    res = runner.invoke(app, ["predict", str(mol_model), str(library), "--out", str(alone)])
    assert res.exit_code == 3, res.output
    spread = tmp_path / "spread.csv"
    args = ["predict", str(mol_model), str(library), "--out", str(spread), "--batch-size", "4"]
    res = runner.invoke(app, [*args, "--workers", "1"])
    assert res.exit_code == 3, res.output
    assert "21 rows predicted, 1 invalid" in res.output
    a, b = pd.read_csv(alone), pd.read_csv(spread)
    assert a.columns.tolist() == b.columns.tolist()
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / ".spread.csv.parts").exists()  # the work directory is removed
    feats = tmp_path / "feats.parquet"
    res = runner.invoke(
        app,
        ["featurize", str(library), "--out", str(feats), "--encoders", "maccs", "--workers", "1"],
    )
    assert res.exit_code == 3, res.output
    one = tmp_path / "feats1.parquet"
    res = runner.invoke(app, ["featurize", str(library), "--out", str(one), "--encoders", "maccs"])
    assert res.exit_code == 3, res.output
    pd.testing.assert_frame_equal(pd.read_parquet(feats), pd.read_parquet(one), check_dtype=False)
    res = runner.invoke(
        app, ["featurize", str(library), "--out", str(feats), "--fused", "--workers", "1"]
    )
    assert res.exit_code == 2 and "--fused" in res.output
