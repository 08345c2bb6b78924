"""Tampered and half-written model directories are refused, with one line and no side effect.

Each attack is what someone who hands over a model directory can do: craft the skops file,
recompute every checksum (config.json and the manifests are plain JSON), flip bytes, add,
remove or link files. Loading must refuse before anything the files ask for is executed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from matfuse.models import UnsafeModelError
from matfuse.pipeline import PropertyModel

#: 30 small molecules: enough for a model whose predictions differ per molecule, fast to fit.
SMILES = [
    "CCO", "CCCO", "CCCCO", "CC(C)O", "OCCO", "CCOC(=O)C", "c1ccccc1", "Cc1ccccc1",
    "CCc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "Clc1ccccc1", "COc1ccccc1", "O=C(O)c1ccccc1",
    "CC(=O)Nc1ccc(O)cc1", "c1ccc2ccccc2c1", "c1ccncc1", "Cc1ccncc1", "C1CCCCC1",
    "OC1CCCCC1", "C1CCNCC1", "C1COCCN1", "CN1CCNCC1", "CC(N)Cc1ccccc1", "OC(=O)CCC(=O)O",
    "NCCCCN", "CCN(CC)CC", "CC#N", "ClCCl", "FC(F)(F)c1ccccc1",
]  # fmt: skip
SKOPS = "estimator/target_0.skops"
ESTIMATOR_CONFIG = "estimator/config.json"
_ids = count(1)


# -- fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A tiny saved model (MACCS keys + XGBoost with conformal folds) and its predictions."""
    from conftest_helpers import logp

    model = PropertyModel(encoders=["maccs"], model="xgboost", model_params={"n_estimators": 8})
    model.fit(SMILES, logp(SMILES), ["logp"])
    directory = model.save(tmp_path_factory.mktemp("trained") / "model")
    return directory, model.predict(SMILES)


@pytest.fixture
def model_dir(trained: tuple[Path, np.ndarray], tmp_path: Path) -> Path:
    """A fresh copy of the saved model for one test to tamper with."""
    return Path(shutil.copytree(trained[0], tmp_path / "model"))


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of the user's that a malicious model would like to overwrite."""
    path = tmp_path / "victim.txt"
    path.write_text("precious user data\n")
    return path


# -- what an attacker does ------------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _forge_manifest(directory: Path) -> None:
    """Rewrite ``manifest.json`` to match whatever is in ``directory`` now (links followed)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    files = {}
    for folder, _, names in os.walk(directory, followlinks=True):
        for name in names:
            path = Path(folder) / name
            rel = path.relative_to(directory).as_posix()
            if rel != "manifest.json":
                data = path.read_bytes()
                files[rel] = {"size": len(data), "sha256": _sha(data)}
    manifest["files"] = files
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _reseal(model_dir: Path) -> None:
    """Recompute every checksum a model directory carries, as a careful attacker would."""
    estimator = model_dir / "estimator"
    config = json.loads((estimator / "config.json").read_text())
    for name in config["files"]:
        config["files"][name]["sha256"] = _sha((estimator / name).read_bytes())
    (estimator / "config.json").write_text(json.dumps(config))
    if (estimator / "manifest.json").exists():
        _forge_manifest(estimator)
    if (model_dir / "manifest.json").exists():
        _forge_manifest(model_dir)


def _json_node(value: Any) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": next(_ids),
    }


def _tuple_node(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": list(items),
        "__id__": next(_ids),
    }


def _call_node(module: str, name: str, *args: Any) -> dict[str, Any]:
    """A skops node that calls ``module.name(*args)`` when the file is loaded."""
    nodes = [
        _tuple_node(*map(_json_node, a)) if isinstance(a, tuple) else _json_node(a) for a in args
    ]
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": _tuple_node(*nodes),
        "__id__": next(_ids),
    }


def _memmap_node(victim: Path) -> dict[str, Any]:
    """``numpy.memmap(victim, "uint8", "w+", 0, (16,))``: truncates the victim to 16 zeros."""
    return _call_node("numpy", "memmap", str(victim), "uint8", "w+", 0, (16,))


def _rewrite_skops(model_dir: Path, edit: Any) -> None:
    """Apply ``edit(schema)`` to the skops file's schema, keep its arrays, reseal everything."""
    path = model_dir / SKOPS
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    _reseal(model_dir)


def _replace_estimator(node: dict[str, Any]) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        schema["content"]["estimator"] = node

    return edit


def _str_type_node() -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}


def _hide_in_estimator(node: dict[str, Any]) -> Any:
    """Bury ``node`` in a list in a dict inside the state of the real fitted object."""

    def edit(schema: dict[str, Any]) -> None:
        fitted = [schema["content"][k] for k in ("conformal", "estimator")]
        state = next(n["content"] for n in fitted if n["__loader__"] == "ObjectNode")
        assert state["__loader__"] == "DictNode"
        inner = {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {"cache": node},
            "key_types": {
                "__class__": "list",
                "__module__": "builtins",
                "__loader__": "ListNode",
                "content": [_str_type_node()],
                "__id__": next(_ids),
            },
            "__id__": next(_ids),
        }
        state["content"]["_matfuse_cache"] = {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [inner],
            "__id__": next(_ids),
        }
        state["key_types"]["content"].append(_str_type_node())  # keys and types pair up

    return edit


def _change_last_digit(path: Path) -> None:
    """Flip one digit (the last one in the file): the file still parses, but means more."""
    data = bytearray(path.read_bytes())
    i = max(j for j, b in enumerate(data) if chr(b).isdigit())
    data[i] = ord("7") if data[i] != ord("7") else ord("3")
    path.write_bytes(bytes(data))


def _assert_refused(model_dir: Path, *, names: str) -> UnsafeModelError:
    with pytest.raises(UnsafeModelError) as info:
        PropertyModel.load(model_dir)
    message = str(info.value)
    assert "\n" not in message
    assert names in message, message
    return info.value


# -- crafted skops files --------------------------------------------------------------------
def test_memmap_in_skops_file_is_refused_and_victim_untouched(model_dir: Path, victim: Path):
    _rewrite_skops(model_dir, _replace_estimator(_memmap_node(victim)))
    _assert_refused(model_dir, names="numpy.memmap")
    assert victim.read_text() == "precious user data\n"


def test_os_system_in_skops_file_is_refused(model_dir: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    _rewrite_skops(model_dir, _replace_estimator(_call_node("os", "system", f"touch {marker}")))
    _assert_refused(model_dir, names="os.system")
    assert not marker.exists()


def test_builtins_exec_in_skops_file_is_refused(model_dir: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    _rewrite_skops(model_dir, _replace_estimator(_call_node("builtins", "exec", code)))
    _assert_refused(model_dir, names="builtins.exec")
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["memmap", "rmtree"])
def test_call_nested_in_an_allowed_estimator_is_refused(
    payload: str, model_dir: Path, victim: Path, tmp_path: Path
):
    """The real estimator, with a reduce-style call buried in a list in a dict in its state."""
    precious = tmp_path / "precious_dir"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    node = (
        _memmap_node(victim)
        if payload == "memmap"
        else _call_node("shutil", "rmtree", str(precious))
    )
    _rewrite_skops(model_dir, _hide_in_estimator(node))
    _assert_refused(model_dir, names="numpy.memmap" if payload == "memmap" else "shutil.rmtree")
    assert victim.read_text() == "precious user data\n"
    assert (precious / "keep.txt").read_text() == "keep"


def test_call_of_an_allowed_class_with_arguments_from_the_file_is_refused(model_dir: Path):
    """``numpy.dtype`` is on the allow-list, but only as skops restores it, not as a call."""
    node = _call_node("numpy", "dtype", "float64")
    _rewrite_skops(model_dir, _hide_in_estimator(node))
    _assert_refused(model_dir, names="ConstructorFromReduceNode")


def test_allow_list_is_exact_class_names():
    from matfuse.models.persistence import ALLOWED_TYPES, check_trusted_types

    for name in ALLOWED_TYPES:  # every entry is a class, none a function or a module prefix
        module, _, attr = name.rpartition(".")
        assert isinstance(getattr(__import__(module, fromlist=[attr]), attr), type), name
    for refused in ("numpy.memmap", "numpy.load", "numpy.lib.format.open_memmap", "os.system"):
        with pytest.raises(UnsafeModelError, match=refused):
            check_trusted_types(["numpy.dtype", refused])


# -- integrity --------------------------------------------------------------------------------
def test_flipped_bytes_in_fusion_weights_are_refused(model_dir: Path):
    path = model_dir / "fusion.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # inside the tensor data: still a valid file, different numbers
    path.write_bytes(bytes(data))
    _assert_refused(model_dir, names="fusion.safetensors")


def test_changed_pipeline_config_is_refused(model_dir: Path):
    _change_last_digit(model_dir / "matfuse.json")
    json.loads((model_dir / "matfuse.json").read_text())  # still valid JSON
    _assert_refused(model_dir, names="matfuse.json")


def test_changed_booster_is_refused(model_dir: Path):
    booster = sorted((model_dir / "estimator").glob("*_booster_*.json"))[0]
    _change_last_digit(booster)
    _assert_refused(model_dir, names=f"estimator/{booster.name}")


@pytest.mark.parametrize("where", ["extra.txt", "estimator/target_1.skops"])
def test_added_file_is_refused(model_dir: Path, where: str):
    (model_dir / where).write_bytes((model_dir / SKOPS).read_bytes())
    _assert_refused(model_dir, names=where)


def test_removed_file_is_refused(model_dir: Path):
    booster = sorted((model_dir / "estimator").glob("*_booster_*.json"))[-1]
    booster.unlink()
    _assert_refused(model_dir, names=booster.name)


@pytest.mark.parametrize("link", [SKOPS, "fusion.safetensors", "estimator"])
def test_symlink_out_of_the_directory_is_refused(model_dir: Path, tmp_path: Path, link: str):
    """The link points at an identical copy outside and every checksum is recomputed."""
    inside = model_dir / link
    outside = tmp_path / "elsewhere" / Path(link).name
    outside.parent.mkdir()
    shutil.move(inside, outside)
    inside.symlink_to(outside, target_is_directory=outside.is_dir())
    _reseal(model_dir)
    _assert_refused(model_dir, names="symlink")


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/hostname", "estimator/../matfuse.json"])
def test_manifest_paths_outside_the_directory_are_refused(model_dir: Path, name: str):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["files"][name] = {"size": 1, "sha256": "0" * 64}
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    _assert_refused(model_dir, names=repr(name))


def test_model_without_manifest_asks_to_retrain(model_dir: Path):
    (model_dir / "manifest.json").unlink()
    error = _assert_refused(model_dir, names="manifest.json")
    assert "pre-1.0" in str(error) and "retrain" in str(error)


def test_crystal_graph_and_foundation_directories_are_checked(tmp_path: Path):
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    from matfuse.foundation.model_dir import load_model_dir
    from matfuse.foundation.weights import weights_dir
    from matfuse.pipeline import END_TO_END_WEIGHTS

    cells = [Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0] * 3, [0.5] * 3]) for a in (4, 4.2)]
    pm = PropertyModel(
        model="crystal-graph",
        input_type="structure",
        model_params={"hidden": 8, "n_conv": 1, "epochs": 1},
    )
    saved = pm.fit(cells, [1.0, 2.0]).save(tmp_path / "cg")
    PropertyModel.load(saved)
    data = bytearray((saved / END_TO_END_WEIGHTS).read_bytes())
    data[-1] ^= 1
    (saved / END_TO_END_WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(UnsafeModelError, match=END_TO_END_WEIGHTS):
        PropertyModel.load(saved)

    shipped = Path(shutil.copytree(weights_dir("graph-ged"), tmp_path / "graph-ged"))
    (shipped / "MODEL_CARD.md").write_text("rewritten card")  # documentation, not checked
    load_model_dir(shipped)
    (shipped / "notes.txt").write_text("extra")
    with pytest.raises(UnsafeModelError, match="notes.txt"):
        load_model_dir(shipped)


# -- the command line -----------------------------------------------------------------------
@pytest.mark.parametrize("attack", ["memmap", "flipped-weights"])
def test_cli_predict_refuses_with_one_line_and_exit_2(
    attack: str, model_dir: Path, victim: Path, tmp_path: Path
):
    if attack == "memmap":
        _rewrite_skops(model_dir, _replace_estimator(_memmap_node(victim)))
    else:
        path = model_dir / "fusion.safetensors"
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x40
        path.write_bytes(bytes(data))
    table = tmp_path / "input.csv"
    pd.DataFrame({"smiles": ["CCO", "c1ccccc1"]}).to_csv(table, index=False)
    out = tmp_path / "x.csv"
    res = subprocess.run(
        [sys.executable, "-c", "from matfuse.cli import app; app()", "predict"]
        + [str(model_dir), str(table), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "60"},  # a narrow terminal must not wrap the line
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()
    assert victim.read_text() == "precious user data\n"


# -- interrupted saves ------------------------------------------------------------------------
def _run_child(script: str, tmp_path: Path) -> subprocess.Popen[str]:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(child: subprocess.Popen[str], line: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    assert child.stdout is not None
    while time.monotonic() < deadline:
        got = child.stdout.readline()
        if got.strip() == line:
            return
        if not got and child.poll() is not None:
            pytest.fail(f"child exited early: {child.stderr.read() if child.stderr else ''}")
    pytest.fail(f"child never printed {line!r}")


def _assert_complete(target: Path, allowed: list[np.ndarray]) -> None:
    """``target`` loads, and predicts exactly as one of the complete models did."""
    pred = PropertyModel.load(target).predict(SMILES)
    assert any(np.array_equal(pred, p) for p in allowed)


def test_kill_during_save_leaves_the_previous_model(
    trained: tuple[Path, np.ndarray], tmp_path: Path
):
    old_dir, old_pred = trained
    target = Path(shutil.copytree(old_dir, tmp_path / "model"))
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    child = _run_child(
        f"""
        import time
        import skops.io as sio
        from matfuse.pipeline import PropertyModel

        model = PropertyModel.load({str(old_dir)!r})
        real_dump = sio.dump

        def slow_dump(*args, **kwargs):  # the skops file is written, the rest is not
            real_dump(*args, **kwargs)
            print("MIDSAVE", flush=True)
            time.sleep(600)

        sio.dump = slow_dump
        model.save({str(target)!r})
        """,
        tmp_path,
    )
    try:
        _wait_for(child, "MIDSAVE")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    _assert_complete(target, [old_pred])


def test_kill_at_a_random_moment_of_repeated_saves(
    trained: tuple[Path, np.ndarray], tmp_path: Path
):
    """Saves alternate between two different models; a kill leaves one of them, complete."""
    from conftest_helpers import logp

    old_dir, old_pred = trained
    other = PropertyModel(encoders=["maccs"], model="xgboost", model_params={"n_estimators": 3})
    other.fit(SMILES, logp(SMILES) + 1.0, ["logp"])
    other_dir = other.save(tmp_path / "other")
    other_pred = other.predict(SMILES)
    target = Path(shutil.copytree(old_dir, tmp_path / "model"))
    rng = np.random.default_rng(0)
    for _ in range(2):
        child = _run_child(
            f"""
            from matfuse.pipeline import PropertyModel

            models = [PropertyModel.load(p) for p in ({str(other_dir)!r}, {str(old_dir)!r})]
            print("READY", flush=True)
            i = 0
            while True:
                models[i % 2].save({str(target)!r})
                i += 1
            """,
            tmp_path,
        )
        try:
            _wait_for(child, "READY")
            time.sleep(float(rng.uniform(0.2, 1.5)))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        _assert_complete(target, [old_pred, other_pred])
