"""Every name the top-level package advertises resolves, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import matfuse


def test_every_exported_name_resolves() -> None:
    for name in matfuse.__all__:
        assert getattr(matfuse, name) is not None, name


def test_import_does_not_load_heavy_libraries() -> None:
    heavy = "('torch', 'rdkit', 'pymatgen')"
    code = f"import sys, matfuse; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
