"""Training progress the user can see: the current stage, the stages done, elapsed and ETA.

Gradio's own progress bar sits over the outputs of an event, and the Learn tab's outputs are
hidden until training ends, so the bar was invisible. Instead the Learn tab runs training in
a worker thread and streams :meth:`TrainProgress.markdown` into a box right under the *Train*
button. Two sources feed it:

* the app's milestones (``progress(fraction, message)`` from
  :func:`matfuse.app.training.train_model`: features, single-encoder fits, the fused fit,
  evaluation), which set the coarse fraction;
* the library's named stages (:func:`matfuse.progress.stage`: ``encode <block>``,
  ``fit <model> (j/t)``, ``report``, a crystal-graph model's epochs), which move the
  fraction inside the current milestone's span and name what runs right now.

The ETA is elapsed time scaled by the fraction still to go; it is only shown once some
progress was made (before that it would be a guess from nothing).

>>> p = TrainProgress(clock=iter([0.0, 10.0, 10.0]).__next__)
>>> p.milestone(0.5, "fitting the fused model")
>>> p.eta_s()
10.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from matfuse.progress import Stage

__all__ = ["MILESTONES", "TrainProgress"]

#: Fractions at which :func:`~matfuse.app.training.train_model` reports its milestones; a
#: library stage moves the bar between the current milestone and the next one.
MILESTONES = (0.0, 0.35, 0.65, 0.92, 1.0)
#: Completed steps listed under the current one (older ones are summarised as a count).
SHOWN_STEPS = 12
#: Share of a milestone's span given to its encode stages (the fits get the rest).
ENCODE_SHARE = 0.25


def _clock() -> float:
    return time.perf_counter()


@dataclass
class TrainProgress:
    """Thread-safe record of a training run's progress, rendered as Markdown.

    The worker thread calls :meth:`milestone` and :meth:`on_stage`; the page's generator
    calls :meth:`markdown` twice a second.
    """

    clock: Callable[[], float] = _clock
    fraction: float = 0.0
    current: str = "starting"
    #: (step text, seconds it took), oldest first
    done: list[tuple[str, float]] = field(default_factory=list)
    finished: bool = False
    _start: float = 0.0
    _step_start: float = 0.0
    _span: tuple[float, float] = (0.0, MILESTONES[1])
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._start = self._step_start = self.clock()

    def _begin(self, text: str, now: float) -> None:
        if self.current and self.current != "starting":
            self.done.append((self.current, now - self._step_start))
        self.current = text
        self._step_start = now

    def milestone(self, fraction: float, message: str) -> None:
        """An app milestone: ``fraction`` of the whole run reached, ``message`` starts."""
        with self._lock:
            now = self.clock()
            lo = min(max(float(fraction), 0.0), 1.0)
            hi = next((m for m in MILESTONES if m > lo + 1e-9), 1.0)
            self._span = (lo, hi)
            self.fraction = max(self.fraction, lo)
            if lo >= 1.0:
                self.finished = True
                self._begin("", now)
                return
            self._begin(message, now)

    def on_stage(self, s: Stage) -> None:
        """A library stage (:func:`matfuse.progress.listen_stages` listener)."""
        with self._lock:
            now = self.clock()
            lo, hi = self._span
            share = s.step / s.total if s.total > 0 else 0.0
            # inside one milestone, encoding is quick next to fitting (the fused ESOL fit:
            # 19 s encoding, 119 s fitting): encode stages fill the first quarter of the span
            mixed = lo >= MILESTONES[1]  # the features milestone holds encoding only
            if mixed and s.phase == "encode":
                share *= ENCODE_SHARE
            elif mixed and s.phase in ("fit", "epoch"):
                share = ENCODE_SHARE + (1.0 - ENCODE_SHARE) * share
            self.fraction = max(self.fraction, lo + (hi - lo) * share)
            self._begin(s.text, now)

    def elapsed_s(self) -> float:
        return self.clock() - self._start

    def eta_s(self) -> float | None:
        """Seconds still to go, by the pace so far; ``None`` when that pace says nothing:
        before any progress, or while one step has already run longer than the whole
        estimate (a fused fit can take ten times its single-encoder fits, and a countdown
        stuck at "8 s left" for two minutes is worse than no number)."""
        if self.fraction <= 0.02:
            return None
        now = self.clock()
        elapsed = now - self._start
        eta = max(0.0, elapsed * (1.0 - self.fraction) / self.fraction)
        if now - self._step_start > max(eta, 5.0):
            return None
        return eta

    def step_s(self) -> float:
        """How long the current step has been running."""
        return self.clock() - self._step_start

    def markdown(self) -> str:
        """The progress box: bar, stage, elapsed, ETA and the steps done so far."""
        with self._lock:
            elapsed = self.elapsed_s()
            eta = self.eta_s()
            fraction = self.fraction
            current, done = self.current, list(self.done)
        filled = int(round(fraction * 20))
        bar = "█" * filled + "░" * (20 - filled)
        head = "Training finished" if self.finished else f"Training: **{current}**"
        timing = f"{elapsed:.0f} s elapsed"
        if not self.finished:
            if eta is not None:
                timing += f" · about {eta:.0f} s left"
            elif fraction > 0.02:
                timing += (
                    f" · this step has run {self.step_s():.0f} s, longer than the pace so far "
                    "predicts: time left unknown"
                )
            else:
                timing += " · estimating time left"
        lines = [f"{head}", f"`{bar}` {fraction:.0%} · {timing}"]
        done = collapse_chunks(done)
        if done:
            older = len(done) - SHOWN_STEPS
            steps = [f"✓ {text} ({seconds:.1f} s)" for text, seconds in done[-SHOWN_STEPS:]]
            if older > 0:
                steps.insert(0, f"✓ … {older} earlier step(s)")
            lines.append("  \n".join(steps))
        return "\n\n".join(lines)

    def text(self) -> str:
        """The same content without Markdown, for logs and the walkthrough script."""
        return self.markdown().replace("**", "").replace("`", "")


def collapse_chunks(done: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Consecutive chunks of one encoder as one step: ``encode ecfp: rows 1-256 of 1,282
    (1/10)``, ``... rows 257-512 ...`` become ``encode ecfp: 1,282 rows (2 chunks)`` with
    their summed time, so the list says which blocks were computed, not every chunk."""
    out: list[tuple[str, float]] = []
    counts: list[int] = []
    for text, seconds in done:
        head, sep, rest = text.partition(": rows ")
        key = head if sep else None
        if key is not None and out and counts[-1] > 0 and out[-1][0].startswith(key + ": "):
            total = rest.split(" of ", 1)[-1].split(" (", 1)[0]
            counts[-1] += 1
            out[-1] = (f"{key}: {total} rows ({counts[-1]} chunks)", out[-1][1] + seconds)
            continue
        out.append((text, seconds))
        counts.append(1 if key is not None else 0)
    return out


@dataclass
class BackgroundRun:
    """A function running in a worker thread with a :class:`TrainProgress` listening.

    The library's stage listener is a context variable, so it is installed *inside* the
    worker thread (each session's run has its own listener).
    """

    progress: TrainProgress
    thread: threading.Thread
    result: object = None
    error: BaseException | None = None

    @classmethod
    def start(
        cls, work: Callable[[Callable[[float, str], None]], object], progress: TrainProgress
    ) -> BackgroundRun:
        run = cls(progress=progress, thread=threading.Thread(daemon=True, name="matfuse-train"))

        def target() -> None:
            from matfuse.progress import listen_stages

            try:
                with listen_stages(progress.on_stage):
                    run.result = work(progress.milestone)
            except BaseException as err:  # noqa: BLE001 - re-raised in the page's handler
                run.error = err

        run.thread = threading.Thread(target=target, daemon=True, name="matfuse-train")
        run.thread.start()
        return run

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; whether the run has ended."""
        self.thread.join(seconds)
        return not self.thread.is_alive()
