"""``import matfuse`` and a fingerprint encoder do not import torch (seconds of start-up)."""

from __future__ import annotations

import json
import subprocess
import sys


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_fingerprints_inputs_and_workflow_import_no_torch():
    code = (
        "import matfuse, sys; from matfuse.encoders import get_encoder; "
        "get_encoder('ecfp').transform(['CCO']); import matfuse.inputs, matfuse.workflow; "
        "print('torch' in sys.modules)"
    )
    assert _run(code) == "False"


def test_encoders_command_lists_the_foundation_models_without_torch():
    code = (
        "import json, sys; from typer.testing import CliRunner; from matfuse.cli import app; "
        "res = CliRunner().invoke(app, ['encoders', '--json']); "
        "rows = {r['name']: r for r in json.loads(res.stdout)}; "
        "print(json.dumps([rows, 'torch' in sys.modules]))"
    )
    rows, torch_loaded = json.loads(_run(code))
    for name, modality in [
        ("smi-ted", "smiles"),
        ("selfies-ted", "selfies"),
        ("smi-ssed", "smiles"),
        ("graph-ged", "graph"),
    ]:
        assert rows[name]["modality"] == modality and rows[name]["pretrained"]
        assert rows[name]["dim"] == 128  # from config.json, the network is not loaded
    assert torch_loaded is False
