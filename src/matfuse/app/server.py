"""Assemble the tabs into one Gradio app and serve it.

Serving defaults are the safe ones: bound to 127.0.0.1, no public share link, uploads capped
by the server before any of our code sees them, analytics off (the app must work offline),
and the request queue on so that long jobs never block other requests.
"""

from __future__ import annotations

import os
import signal
import threading
from functools import partial
from types import FrameType

import gradio as gr

from matfuse.app import data_tab, generate_tab, learn_tab, predict_tab, represent_tab
from matfuse.app.sessions import SessionLimits, SessionReaper
from matfuse.app.state import delete_session, new_session
from matfuse.app.uploads import MAX_UPLOAD_MB

#: Session memory is freed when the browser disconnects (``demo.unload``), after
#: ``SessionLimits.idle_s`` without use, and least recently used first when the sessions
#: together exceed ``SessionLimits.total_mb`` (see :mod:`matfuse.app.sessions`; the
#: ``MATFUSE_APP_*`` environment variables change the limits).
#: Gradio's own copies of uploads and downloads: swept every 30 min, removed after 2 h.
GRADIO_CACHE_SWEEP = (1800, 7200)
QUEUE_MAX_SIZE = 64

HEADER = """# matfuse
**Represent → fuse → learn → predict** properties of molecules, compositions and crystal
structures, then **generate** new molecules and crystals. Work through the tabs from left
to right: load data, pick encoders, train, predict, design. Everything you load or train
stays in this browser session and is deleted when you close it."""


def build_app(limits: SessionLimits | None = None) -> gr.Blocks:
    """The Blocks app (not yet launched); tests and ``launch`` share it.

    ``demo.session_reaper`` (a :class:`~matfuse.app.sessions.SessionReaper`) frees the
    sessions; ``launch`` starts its timer.
    """
    limits = SessionLimits.from_env() if limits is None else limits
    with gr.Blocks(
        title="matfuse",
        analytics_enabled=False,
        delete_cache=GRADIO_CACHE_SWEEP,
    ) as demo:
        # no time_to_live: Gradio counts it from the state's creation (our handlers change
        # the state in place), which would end busy sessions; the reaper times idleness
        state = gr.State(partial(new_session, limits), delete_callback=delete_session)
        gr.Markdown(HEADER)
        with gr.Tabs():
            data = data_tab.build(state)
            represent = represent_tab.build(state)
            learn = learn_tab.build(state, represent)
            predict = predict_tab.build(state)
            generate = generate_tab.build(state)
        # a new table may be another input kind: offer the encoders that can read it
        for event in data.table_events:
            event.then(represent.on_kind, [state], represent.outputs).then(
                learn.on_kind, learn.kind_inputs, [learn.model]
            )
        for trained in (learn.train_event, learn.reload_event):
            trained.success(predict_tab.after_training, [state], predict.refreshed)
            if generate.refreshed:
                trained.success(generate.after_training, [state], generate.refreshed)
        reaper = SessionReaper(demo, limits)

        def free_session(request: gr.Request) -> None:
            reaper.on_unload(request)

        demo.unload(free_session)
    demo.session_reaper = reaper  # type: ignore[attr-defined]
    return demo


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    block: bool = True,
    limits: SessionLimits | None = None,
) -> gr.Blocks:
    """Build, queue and serve the app; ``block=False`` returns once the server is up."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_app(limits)
    demo.session_reaper.start()  # type: ignore[attr-defined]
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=8)
    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        show_error=True,
        ssr_mode=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        theme=gr.themes.Soft(),
    )
    return demo


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM like Ctrl+C: Gradio then closes the server and the interpreter exits
    normally, which runs the ``atexit`` hook that deletes every session's files."""
    raise KeyboardInterrupt
