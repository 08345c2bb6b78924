"""Per-session state of the web UI: the loaded table, the split, features, the trained model.

The table holds molecules, compositions or crystal structures (whatever
:func:`matfuse.inputs.load_input_table` returned); :attr:`SessionState.kind` says which, and
every tab asks it rather than assuming molecules.

Every browser session gets its own :class:`SessionState` (through ``gr.State`` with a factory),
so concurrent users never see each other's data. Files a session writes (reports, the model,
result CSVs, zips) go to a private temporary directory that is deleted when the session ends
(``gr.State`` delete callback, or :class:`matfuse.app.sessions.SessionReaper` when the browser
disconnects, the session idles or memory runs short) and, as a last resort, when the server
process exits. A session also keeps itself under its own memory cap (``max_bytes``): new
features first push out cached ones, and what cannot fit is refused with a message.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matfuse.app.history import RunHistory
from matfuse.app.kinds import table_kind
from matfuse.app.sessions import (
    MB,
    MEMORY_CHANGED,
    SessionLimits,
    SessionMemoryError,
    approx_nbytes,
)
from matfuse.progress import listen_stages, stage
from matfuse.workflow import SplitData, encode_all

logger = logging.getLogger(__name__)

#: Featurising, training and predicting are CPU-bound: at most this many run at once across
#: all sessions (they share one queue slot group); others wait in Gradio's queue with their
#: position shown, while light events (previews, depictions) keep being served.
COMPUTE_SLOTS = 2
#: How often a page polls a job running in a worker thread (a search, a training run), in
#: seconds: often enough to look live, rarely enough not to flood the websocket.
REFRESH_S = 0.5
#: Rows encoded per step, so that a slow encoder block (a pretrained model on a thousand
#: molecules takes most of a minute) reports progress inside itself; encoders map each row
#: on its own, so chunking does not change the features.
ENCODE_CHUNK = 256
_ROOT_LOCK = threading.Lock()
_ROOT: Path | None = None


def temp_root() -> Path:
    """One directory per server process that holds every session's directory.

    Removing it at exit catches sessions whose browser never said goodbye.
    """
    global _ROOT
    with _ROOT_LOCK:
        if _ROOT is None or not _ROOT.exists():
            _ROOT = Path(tempfile.mkdtemp(prefix="matfuse-app-"))
            atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
        return _ROOT


@dataclass
class SessionState:
    """Everything one browser session has loaded or computed.

    ``blocks`` caches encoder outputs for the current table (keyed by encoder spec), so that
    drawing the latent map and training do not featurise the same molecules twice; it is
    cleared whenever a new table is loaded.
    """

    #: a molecule or material table (both have ``frame``, ``parsed``, ``targets``, ...)
    table: Any = None
    source: str = ""
    provided_split: list[str] | None = None
    split: SplitData | None = None
    #: set by a load, cleared once a split has been made (drives the automatic first split)
    needs_split: bool = False
    blocks: dict[str, np.ndarray] = field(default_factory=dict)
    model: Any = None
    model_dir: Path | None = None
    model_zip: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)
    #: the runs trained in this session (settings and metrics only; models on disk)
    history: RunHistory = field(default_factory=RunHistory)
    #: set by the Generate tab's Stop button to end this session's running search
    generation_stop: threading.Event | None = None
    #: this session's memory cap in bytes (``None``: no cap); see :meth:`fit_in_memory`
    max_bytes: int | None = None
    #: why the session's data was freed (idle, memory, ...); shown by its next action
    notice: str | None = None
    last_used: float = field(default_factory=time.time)
    _dir: Path | None = None
    _model_bytes: tuple[int, int] | None = None

    @property
    def workdir(self) -> Path:
        """The session's private temporary directory, created on first use."""
        if self._dir is None or not self._dir.exists():
            self._dir = Path(tempfile.mkdtemp(prefix="session-", dir=temp_root()))
        return self._dir

    @property
    def kind(self) -> str:
        """``molecule``, ``composition`` or ``structure`` (``molecule`` before any load)."""
        return table_kind(self.table)

    def set_table(self, table: Any, source: str, provided_split: list[str] | None = None) -> None:
        """Replace the data; the split, features and model of the old data are dropped."""
        self.table = table
        self.source = source
        self.provided_split = provided_split
        self.split = None
        self.needs_split = True
        self.blocks = {}
        self.clear_model()
        self.notice = None
        self.touch()
        try:
            self.fit_in_memory(f"the table {source}")
        except SessionMemoryError:
            self.table, self.source, self.provided_split, self.needs_split = None, "", None, False
            raise
        logger.info("session loaded %s: %d rows of %s", source, len(table), self.kind)

    def clear_model(self) -> None:
        """Forget the trained model (its files stay until the session ends)."""
        self.model = None
        self.model_dir = None
        self.model_zip = None
        self.results = {}

    def get_blocks(
        self,
        encoders: Sequence[str],
        on_encoder: Callable[[int, int, str], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Features of every row for ``encoders``, computing only the ones not cached yet."""
        if self.table is None:
            raise ValueError(self.missing_data_message())
        self.touch()
        from matfuse.inputs import check_encoders

        check_encoders(list(encoders), self.kind)  # a clear message, not a NaN block
        names = list(dict.fromkeys(encoders))
        for i, name in enumerate(names):
            if name not in self.blocks:
                if on_encoder is not None:
                    on_encoder(i, len(names), name)
                block = encode_in_chunks(self.table.parsed, name, i, len(names))
                self.blocks[name] = block
                try:
                    self.fit_in_memory(f"the features of {name}", keep=names)
                except SessionMemoryError:
                    self.blocks.pop(name, None)
                    raise
        return {name: self.blocks[name] for name in names}

    def touch(self) -> None:
        """Mark the session as just used (its idle timer restarts)."""
        self.last_used = time.time()

    def missing_data_message(self) -> str:
        """The "load a dataset first" message, with the reason if the data was freed."""
        if self.notice:
            return f"{self.notice}; load a dataset again (Data tab)"
        return "load a dataset first (Data tab)"

    def nbytes(self) -> int:
        """Estimated memory this session holds (table, features, split, model, results)."""
        model = self.model
        if model is None:
            model_bytes = 0
        elif self._model_bytes is not None and self._model_bytes[0] == id(model):
            model_bytes = self._model_bytes[1]
        else:  # sizing a model walks its trees/arrays: once per model is enough
            model_bytes = approx_nbytes(model)
            self._model_bytes = (id(model), model_bytes)
        return model_bytes + approx_nbytes(
            [self.table, self.split, self.blocks, self.results, self.provided_split, self.history]
        )

    def fit_in_memory(self, what: str, keep: Sequence[str] = (), refuse: bool = True) -> None:
        """Stay under ``max_bytes``: drop cached features not in ``keep``, oldest first, then
        (with ``refuse``) raise :class:`SessionMemoryError`, a ``ValueError`` whose message
        is for the user, if that is not enough.

        Called after the session grew; also tells the reaper to check the server's total.
        """
        MEMORY_CHANGED.set()
        if self.max_bytes is None:
            return
        size = self.nbytes()
        for name in [n for n in self.blocks if n not in keep]:
            if size <= self.max_bytes:
                break
            size -= int(self.blocks.pop(name).nbytes)
        if size > self.max_bytes and refuse:
            raise SessionMemoryError(
                f"{what} would take this session to about {size / MB:,.0f} MB, over its "
                f"limit of {self.max_bytes / MB:,.0f} MB; use a smaller dataset or fewer "
                "encoders (the server's MATFUSE_APP_SESSION_MB sets the limit)"
            )

    def release(self, notice: str | None = None) -> None:
        """Drop the data, features, model and files; the session can load data again."""
        self.table = None
        self.source = ""
        self.provided_split = None
        self.split = None
        self.needs_split = False
        self.blocks = {}
        self.clear_model()
        self.history = RunHistory()  # its model directories go with the session's files
        self._model_bytes = None
        self.stop_generation()
        self.notice = notice
        self.cleanup()

    def stop_generation(self) -> None:
        """End this session's running search (molecules or crystals) at its next report:
        the Generate tab's Stop buttons, and a freed session."""
        if self.generation_stop is not None:
            self.generation_stop.set()

    def cleanup(self) -> None:
        """Delete the session's files; safe to call twice."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def encode_in_chunks(parsed: Any, name: str, index: int = 0, count: int = 1) -> np.ndarray:
    """``name``'s block for every row of ``parsed``, ``ENCODE_CHUNK`` rows at a time.

    Each chunk is reported as a library stage (``encode ecfp: rows 1-256 of 1,128``) with
    its share of all ``count`` encoders, ``index`` being this one; the stage the library
    itself reports per block is muted here, since the chunks say more. A batch that cannot
    be cut into rows (no ``subset``) is encoded whole.
    """
    n = len(parsed)
    starts = list(range(0, n, ENCODE_CHUNK)) or [0]
    if len(starts) == 1 or not hasattr(parsed, "subset"):
        stage("encode", name, index, count)
        with listen_stages(lambda _s: None):
            return encode_all(parsed, [name], progress=False)[name]
    from matfuse.encoders import get_encoder

    encoder = get_encoder(name)  # built once: a pretrained model loads its weights once
    parts = []
    for c, lo in enumerate(starts):
        hi = min(lo + ENCODE_CHUNK, n)
        stage(
            "encode",
            f"{name}: rows {lo + 1:,}-{hi:,} of {n:,}",
            index * len(starts) + c,
            count * len(starts),
        )
        part = encoder.encode_block(parsed.subset(np.arange(lo, hi))).values
        parts.append(np.asarray(part))
    return np.concatenate(parts, axis=0)


def new_session(limits: SessionLimits | None = None) -> SessionState:
    """Factory handed to ``gr.State`` so that each page load gets a fresh state."""
    limits = SessionLimits.from_env() if limits is None else limits
    return SessionState(max_bytes=limits.session_bytes)


def delete_session(state: Any) -> None:
    """``gr.State`` delete callback: runs when the tab closes or the state expires."""
    if isinstance(state, SessionState):
        state.cleanup()
