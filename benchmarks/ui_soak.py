"""Web-UI soak: does the server give memory back when sessions end?

Starts ``matfuse app`` on loopback (the real command, in a subprocess), then runs a bounded
number of sessions through ``gradio_client`` (each one is a browser session as far as the
server is concerned: its own ``session_hash`` and heartbeat). Each session loads a bundled
dataset, applies the default split and, every ``--train-every`` sessions, trains a small
model; sessions stay open in waves of ``--wave`` and are then disconnected. The server's
resident memory (RSS, psutil, the server process and its children) is recorded at a cold
start, at the baseline (after one warm-up session, so that one-time imports and model
caches do not count as growth), after every step, at the peak, and after the sessions were
released.

    python benchmarks/ui_soak.py [--sessions 60] [--wave 10] [--train-every 5]

Writes ``benchmarks/results/robustness_ui.json``. ``main(argv)`` returns the same dict, so
``benchmarks/robustness.py`` can call it (or ``run(args)`` with its namespace).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_OUT = RESULTS / "robustness_ui.json"
DATASET = "Aqueous solubility (demo)"
MB = 1_000_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_rss_mb(pid: int) -> float:
    """Resident memory of the server and its children, in MB."""
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return round(total / MB, 1)


def start_server(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the process, closed by the OS
    proc = subprocess.Popen(
        [sys.executable, "-m", "matfuse.cli", "app", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"matfuse app exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("matfuse app did not answer within 240 s")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_session(client: Any, train: bool, encoders: list[str], model: str) -> list[str]:
    """One user's work: load, split, maybe train. Returns the steps done."""
    out = client.predict(DATASET, api_name="/load_bundled")
    status = str(out[0])
    if not status.startswith("Loaded"):
        raise RuntimeError(f"load failed: {status[:300]}")
    input_col = out[2]["value"] if isinstance(out[2], dict) else "smiles"
    targets = out[3]["value"] if isinstance(out[3], dict) else ["SOL"]
    client.predict(input_col, targets, "random", 0.2, 0.1, 0, None, api_name="/apply_after_load")
    steps = ["load", "split"]
    if train:
        client.predict(
            model,
            "none",
            0,
            "{}",
            False,
            encoders,
            [],
            [],
            [],
            [],
            api_name="/train",
        )
        steps.append("train")
    return steps


def soak(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    from gradio_client import Client

    port = args.port or _free_port()
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
        # disconnects are noticed one heartbeat after they happen (Gradio's default: 15 s)
        "GRADIO_HEARTBEAT_INTERVAL": str(args.heartbeat),
    }
    log_path = Path(tempfile.gettempdir()) / f"matfuse-ui-soak-{port}.log"
    proc = start_server(port, env, log_path)
    url = f"http://127.0.0.1:{port}/"
    steps: list[dict[str, Any]] = []
    started = time.monotonic()

    def record(step: str, session: int | None = None) -> float:
        rss = server_rss_mb(proc.pid)
        steps.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "step": step,
                "session": session,
                "rss_mb": rss,
            }
        )
        if args.verbose:
            print(f"{steps[-1]['t_s']:7.1f}s  {step:<10} {session!s:>4}  {rss:8.1f} MB", flush=True)
        return rss

    errors: list[str] = []
    cold = baseline = after = 0.0
    try:
        time.sleep(2)
        cold = record("cold")
        if args.warmup:  # one trained session first: imports and caches load once per process
            client = Client(url, verbose=False)
            try:
                run_session(client, True, args.encoders.split(","), args.model)
            except Exception as err:  # noqa: BLE001
                errors.append(f"warm-up: {type(err).__name__}: {err}"[:500])
            client.close()
            time.sleep(args.heartbeat * 3 + 1)
        baseline = record("baseline")
        done = 0
        while done < args.sessions:
            wave = min(args.wave, args.sessions - done)
            clients = []
            for _ in range(wave):
                index = done + len(clients)
                client = Client(url, verbose=False)
                clients.append(client)
                train = args.train_every > 0 and index % args.train_every == 0
                try:
                    run_session(client, train, args.encoders.split(","), args.model)
                except Exception as err:  # noqa: BLE001 - a failed session is a finding
                    errors.append(f"session {index}: {type(err).__name__}: {err}"[:500])
                record("train" if train else "load", index)
            for client in clients:
                client.close()
            done += wave
            time.sleep(args.heartbeat * 3 + 1)  # the server notices the disconnects
            record("wave closed", done)
        peak_while_open = max(s["rss_mb"] for s in steps if s["step"] != "cold")
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:
            time.sleep(min(5.0, args.settle))
            record("settling")
        after = steps[-1]["rss_mb"]
    finally:
        stop_server(proc)

    return {
        "benchmark": "ui_soak",
        "command": " ".join(["python", "benchmarks/ui_soak.py", *argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}",
        "settings": {
            "sessions": args.sessions,
            "wave": args.wave,
            "train_every": args.train_every,
            "dataset": DATASET,
            "encoders": args.encoders.split(","),
            "model": args.model,
            "heartbeat_s": args.heartbeat,
            "settle_s": args.settle,
            "limits_env": {k: v for k, v in os.environ.items() if k.startswith("MATFUSE_APP_")},
        },
        "rss_mb": {
            "cold_start": cold,
            "baseline": baseline,
            "peak": peak_while_open,
            "after_release": after,
            "growth_kept": round(after - baseline, 1),
        },
        "per_session_mb": round((peak_while_open - baseline) / max(1, args.wave), 1),
        "errors": errors,
        "steps": steps,
        "wall_s": round(time.monotonic() - started, 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=60, help="sessions in all (60)")
    parser.add_argument("--wave", type=int, default=10, help="sessions open at once (10)")
    parser.add_argument(
        "--train-every", type=int, default=5, help="train in every k-th session; 0: never (5)"
    )
    parser.add_argument("--encoders", default="maccs,ecfp-count", help="for the training step")
    parser.add_argument("--model", default="rf", help="for the training step (rf)")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="GRADIO_HEARTBEAT_INTERVAL")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds watched after the end")
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="measure the baseline on a cold server (imports then count as growth)",
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quiet", dest="verbose", action="store_false")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the soak, write ``--out`` (JSON) and return the result."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    result = soak(args, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    rss = result["rss_mb"]
    print(
        f"server RSS: baseline {rss['baseline']:.0f} MB → peak {rss['peak']:.0f} MB → "
        f"after release {rss['after_release']:.0f} MB ({len(result['errors'])} errors); "
        f"wrote {args.out}"
    )
    return result


def run(args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Entry point for ``benchmarks/robustness.py --ui``: the defaults, overridden by any
    attribute of ``args`` named like one of this script's options (``sessions``, ``wave``,
    ``train_every``, ``out``, ...)."""
    defaults = vars(parse_args([]))
    argv: list[str] = []
    for name, default in defaults.items():
        value = getattr(args, name, None) if args is not None else None
        if value is None or value == default or name in ("verbose", "warmup"):
            continue
        argv += [f"--{name.replace('_', '-')}", str(value)]
    if args is not None and getattr(args, "warmup", True) is False:
        argv.append("--no-warmup")
    return main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
