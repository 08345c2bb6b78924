"""The matfuse web UI (``matfuse app``): the whole workflow in a browser.

Needs the ``app`` extra (``pip install "matfuse[app]"``). Modules: ``server`` assembles the
tabs and serves them; ``data_tab``, ``represent_tab``, ``learn_tab`` and ``predict_tab`` lay
out one tab each; ``uploads``, ``datasets``, ``training``, ``plots`` and ``state`` hold the
UI-free logic (unit-tested without a browser); ``kinds`` holds what the UI shows per input
kind; ``sessions`` frees sessions (browser gone, idle, memory caps). ``train_progress``
streams training stages and an ETA under the *Train* button, ``history`` keeps the session's
runs (reloadable from their saved model directories), ``hyper_widgets`` makes hyperparameter
fields from the model registry, ``test_file`` turns a separate test upload into an "as
provided" split, ``curves`` draws ROC / precision-recall / calibration plots and reads units
from column names, ``map_colours`` colours the latent map (viridis, or RdBu for signed
targets), ``generate_results`` and ``seed_compare`` show a finished or stopped search.

Session limits come from the environment: ``MATFUSE_APP_IDLE_MINUTES`` (default 45),
``MATFUSE_APP_SESSION_MB`` (1024), ``MATFUSE_APP_TOTAL_MB`` (4096), ``MATFUSE_APP_SWEEP_S``
(30); ``launch(limits=SessionLimits(...))`` sets them in code.
"""

from __future__ import annotations

from typing import Any


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, **kw: Any) -> Any:
    """Serve the app; imported lazily so that ``import matfuse.app`` does not need gradio."""
    from matfuse.app.server import launch as _launch

    return _launch(host=host, port=port, share=share, **kw)


__all__ = ["launch"]
