"""Session memory: the eviction policy, size estimates, per-session caps, and freeing a
session when its browser disconnects."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")

from conftest_helpers import logp  # noqa: E402
from matfuse.app.sessions import (  # noqa: E402
    MB,
    SessionLimits,
    SessionMemoryError,
    SessionReaper,
    SessionUsage,
    approx_nbytes,
    plan_evictions,
)
from matfuse.app.state import SessionState  # noqa: E402
from matfuse.app.uploads import table_from_frame  # noqa: E402

LIMITS = SessionLimits(idle_s=600, session_mb=100, total_mb=250, protect_s=10)


def _usage(key: str, mb: float, age_s: float, closed: bool = False) -> SessionUsage:
    return SessionUsage(key, int(mb * MB), last_used=1000.0 - age_s, closed=closed)


def test_closed_and_idle_sessions_go_first_then_least_recently_used_until_total_fits():
    usages = [
        _usage("fresh", 90, age_s=1),  # protected: in use right now
        _usage("old", 90, age_s=300),
        _usage("older", 90, age_s=400),
        _usage("recent", 90, age_s=100),
        _usage("gone", 90, age_s=2, closed=True),
        _usage("idle", 10, age_s=601),
    ]
    plan = plan_evictions(usages, LIMITS, now=1000.0)
    # 360 MB alive after closed/idle; 250 MB allowed: the two oldest go, "recent" stays
    assert plan == [("gone", "closed"), ("idle", "idle"), ("older", "memory"), ("old", "memory")]


def test_nothing_is_evicted_under_the_limits_and_protected_sessions_are_kept():
    assert plan_evictions([_usage("a", 100, 50), _usage("b", 100, 60)], LIMITS, 1000.0) == []
    busy = [_usage(k, 200, age_s=5) for k in "abc"]  # all within protect_s
    assert plan_evictions(busy, LIMITS, 1000.0) == []


def test_limits_defaults_and_environment_overrides():
    default = SessionLimits()
    assert 30 * 60 <= default.idle_s <= 60 * 60
    assert default.session_bytes <= default.total_bytes
    env = {
        "MATFUSE_APP_IDLE_MINUTES": "30",
        "MATFUSE_APP_SESSION_MB": "256",
        "MATFUSE_APP_TOTAL_MB": "2048",
        "MATFUSE_APP_SWEEP_S": "nonsense",  # ignored, with a warning
    }
    limits = SessionLimits.from_env(env)
    assert (limits.idle_s, limits.session_mb, limits.total_mb) == (1800.0, 256.0, 2048.0)
    assert limits.sweep_s == default.sweep_s
    assert SessionLimits.from_env({"MATFUSE_APP_TOTAL_MB": "-1"}).total_mb == default.total_mb


def test_size_estimates_see_arrays_frames_and_molecules(smiles):
    assert approx_nbytes(np.zeros((100, 100))) >= 80_000
    frame = pd.DataFrame({"x": np.arange(10_000, dtype=float)})
    assert approx_nbytes(frame) >= 80_000
    shared = np.zeros(10_000)
    assert approx_nbytes([shared, shared]) < 2 * shared.nbytes  # counted once
    table = table_from_frame(pd.DataFrame({"smiles": smiles, "y": logp(smiles)}), targets=["y"])
    per_row = approx_nbytes(table) / len(smiles)
    assert 1_000 < per_row < 100_000  # RDKit keeps ~10 kB per drug-like molecule


def _session(smiles, max_mb: float | None) -> SessionState:
    s = SessionState(max_bytes=None if max_mb is None else int(max_mb * MB))
    frame = pd.DataFrame({"smiles": smiles, "y": logp(smiles)})
    s.set_table(table_from_frame(frame, targets=["y"]), "test")
    return s


def test_per_session_cap_drops_cached_features_then_refuses(smiles):
    base = _session(smiles, None).nbytes()
    s = _session(smiles, (base + 30_000) / MB)  # room for about one small block
    s.blocks["old"] = np.zeros((len(smiles), 400))  # a cached block from earlier
    s.blocks["new"] = np.zeros((len(smiles), 16))
    s.fit_in_memory("the features of new", keep=["new"])
    assert list(s.blocks) == ["new"]  # the old cache went, the session fits
    s.blocks["huge"] = np.zeros((len(smiles), 100_000))
    with pytest.raises(SessionMemoryError, match="over its limit"):
        s.fit_in_memory("the features of huge", keep=["new", "huge"])
    assert isinstance(SessionMemoryError("x"), ValueError)  # the tabs show ValueErrors


def test_a_table_over_the_session_cap_is_refused_with_a_message(smiles):
    with pytest.raises(SessionMemoryError, match="MATFUSE_APP_SESSION_MB"):
        _session(smiles, 0.001)


def _fake_demo(sessions: dict[str, SessionState], closed: set[str]) -> SimpleNamespace:
    import datetime

    now = datetime.datetime.now()
    holder = SimpleNamespace(
        session_data={
            k: SimpleNamespace(state_data={1: s}, is_closed=k in closed)
            for k, s in sessions.items()
        },
        time_last_used={k: now for k in sessions},
        lock=threading.Lock(),
    )
    return SimpleNamespace(state_holder=holder)


def test_reaper_frees_closed_and_idle_sessions_and_notes_why(smiles):
    sessions = {k: _session(smiles, None) for k in ("open", "closed", "idle")}
    sessions["idle"].last_used = 0.0
    demo = _fake_demo(sessions, closed={"closed"})
    demo.state_holder.time_last_used.pop("idle")
    reaper = SessionReaper(demo, SessionLimits(idle_s=60))
    workdir = sessions["closed"].workdir
    plan = reaper.sweep(now=time.time() + 30)
    assert sorted(plan) == [("closed", "closed"), ("idle", "idle")]
    assert list(demo.state_holder.session_data) == ["open"]
    assert sessions["open"].table is not None
    assert sessions["closed"].table is None and not workdir.exists()
    assert "minutes without use" in sessions["idle"].missing_data_message()


def test_memory_eviction_keeps_the_tab_usable_and_explains(smiles):
    sessions = {"a": _session(smiles, None)}
    reaper = SessionReaper(_fake_demo(sessions, set()), SessionLimits())
    assert reaper.release("a", "memory")
    assert "a" in reaper.demo.state_holder.session_data  # the open tab keeps its session
    with pytest.raises(ValueError, match="needed its memory.*load a dataset again"):
        sessions["a"].get_blocks(["morgan"])
    assert not reaper.release("missing")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_disconnected_browser_session_is_freed_at_once(monkeypatch):
    """Gradio alone keeps a closed tab's state for an hour; the app frees it on unload."""
    gradio_client = pytest.importorskip("gradio_client")
    from matfuse.app.datasets import BUNDLED
    from matfuse.app.server import launch

    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.2")
    port = _free_port()
    demo = launch(port=port, block=False, limits=SessionLimits(sweep_s=3600))
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(next(iter(BUNDLED)), api_name="/load_bundled")
        holder = demo.state_holder
        ours = [
            v
            for v in holder.session_data[client.session_hash].state_data.values()
            if isinstance(v, SessionState)
        ]
        assert len(ours) == 1 and ours[0].table is not None
        client.close()
        deadline = time.monotonic() + 30
        while client.session_hash in holder.session_data and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.session_hash not in holder.session_data
        assert ours[0].table is None and ours[0].blocks == {}
    finally:
        demo.session_reaper.stop()
        demo.close()
