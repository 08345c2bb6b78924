"""Crystal-search tests build their structures in code (matfuse.crystals.prototypes)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # the end-to-end search relaxes with CHGNet (~20 s on a CPU); `-m "not slow"` skips it
    config.addinivalue_line("markers", "slow: runs the CHGNet network (seconds on a CPU)")
