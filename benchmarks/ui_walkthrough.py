"""Try the web UI as a new user on real files and record what the page says.

For each data set the script starts from a fresh browser session, uploads the file (and a
separate test file where the data set ships one), and keeps the defaults: the guessed target,
the default split, the kind's default encoders and the ``auto`` model. It records, as text
captured from the page:

* the guessed target and why (the Data tab's status box),
* the split statement (what was held out),
* the training progress box, sampled once a second while the model trains (distinct texts),
* the result summary and the time from the click on *Train* to the metric on screen.

The app runs as ``python -m matfuse.cli app`` in a subprocess, driven by Playwright and
Debian's ``/usr/bin/chromium`` (as the browser tests do). Data are read from
``--data-dir`` (default ``$MATFUSE_DATA`` or ``/work/shared/data``); the perov_5 subset is
written to a temporary directory, never into the repository.

    python benchmarks/ui_walkthrough.py --max-minutes 40
    python benchmarks/ui_walkthrough.py --only esol,expt_gap
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger("ui_walkthrough")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ui_walkthrough.json"
CHROMIUM = os.environ.get("MATFUSE_CHROMIUM", "/usr/bin/chromium")
TRAIN_TIMEOUT_S = 900


@dataclass
class Walk:
    """One data set as a new user would bring it: a file, maybe a separate test file."""

    name: str
    train: str
    test: str | None = None
    #: keep the first rows only (perov_5's val.csv has 18,000 structures)
    rows: int | None = None


WALKS = [
    Walk("esol", "molecules/moleculenet/esol/train.csv", "molecules/moleculenet/esol/test.csv"),
    Walk("bace", "molecules/moleculenet/bace/train.csv", "molecules/moleculenet/bace/test.csv"),
    Walk("expt_gap", "compositions/matbench/expt_gap.csv"),
    Walk("perov_5", "crystals/perov_5/val.csv", rows=300),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log = open(log_path, "w")  # noqa: SIM115 - the server's whole life
    proc = subprocess.Popen(
        [sys.executable, "-m", "matfuse.cli", "app", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"matfuse app exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("matfuse app did not answer within 180 s")


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text()).strip()


def _wait_text(page: Any, selector: str, needle: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = _text(page, selector)
        if needle in text:
            return text
        time.sleep(0.5)
    raise TimeoutError(f"{selector} never said {needle!r}; last: {text[:300]!r}")


def walk(browser: Any, url: str, item: Walk, data_dir: Path, work: Path) -> dict[str, Any]:
    """One data set through Data → Learn with the defaults; what the page said."""
    train = data_dir / item.train
    if item.rows is not None:
        subset = work / f"{item.name}_{item.rows}.csv"
        frame = pd.read_csv(train, nrows=item.rows)  # the file's own header, unnamed too
        frame.columns = ["" if str(c).startswith("Unnamed: ") else c for c in frame.columns]
        frame.to_csv(subset, index=False)
        train = subset
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    out: dict[str, Any] = {"data": item.name, "file": str(train)}
    try:
        page.goto(url)
        page.wait_for_selector("#load-data")
        page.locator("#upload-data input[type=file]").set_input_files(str(train))
        status = _wait_text(page, "#data-status", "Loaded", 300)
        split = _wait_text(page, "#split-status", "Split:", 300)
        out["guessed_target"] = next(
            (line for line in status.splitlines() if line.startswith("Target:")), None
        )
        if item.test is not None:
            test = data_dir / item.test
            out["test_file"] = str(test)
            page.locator("#upload-test input[type=file]").set_input_files(str(test))
            status = _wait_text(page, "#data-status", "test rows added", 300)
            split = _wait_text(page, "#split-status", "as provided", 300)
        out["data_status"] = status
        out["split_statement"] = split
        page.get_by_role("tab", name="3 · Learn").click()
        out["ready"] = _wait_text(page, "#learn-ready", "Encoders", 60)
        start = time.perf_counter()
        page.click("#train-button")
        seen: list[str] = []
        deadline = time.monotonic() + TRAIN_TIMEOUT_S
        summary = ""
        while time.monotonic() < deadline:
            text = _text(page, "#train-progress")
            if text and (not seen or text != seen[-1]):
                seen.append(text)
            summary = _text(page, "#train-summary")
            if summary.startswith("Test "):
                break
            error = page.locator(".toast-body").all_inner_texts()
            if error:
                out["error"] = " | ".join(error)
                break
            time.sleep(1.0)
        out["click_to_metric_s"] = round(time.perf_counter() - start, 1)
        out["progress_samples"] = seen
        out["progress_final"] = _text(page, "#train-progress")
        out["summary"] = summary
        shot = work / f"walk-{item.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        out["screenshot"] = str(shot)
    except Exception as err:  # noqa: BLE001 - one data set failing is a finding, not a crash
        out["error"] = f"{type(err).__name__}: {err}"
    finally:
        context.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("MATFUSE_DATA", "/work/shared/data")),
    )
    parser.add_argument("--only", default="", help="comma-separated data set names")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--shots", type=Path, default=Path("/tmp/ui-shots"))
    parser.add_argument("--max-minutes", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from playwright.sync_api import sync_playwright

    wanted = {n for n in args.only.split(",") if n}
    walks = [w for w in WALKS if not wanted or w.name in wanted]
    args.shots.mkdir(parents=True, exist_ok=True)
    stop_at = time.monotonic() + args.max_minutes * 60
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_app(Path(tmp) / "server.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                for item in walks:
                    if time.monotonic() > stop_at:
                        results.append({"data": item.name, "error": "skipped: --max-minutes"})
                        continue
                    logger.info("walking %s", item.name)
                    results.append(walk(browser, url, item, args.data_dir, args.shots))
                    logger.info("%s: %s", item.name, results[-1].get("summary") or results[-1])
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    command = shlex.join([sys.executable, *sys.argv])
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for result in results:
        result.update(command=command, when=when)
    # a run of some data sets (--only) replaces their entries and keeps the others
    previous = json.loads(args.out.read_text()).get("walks", []) if args.out.exists() else []
    done = {r["data"] for r in results}
    order = [w.name for w in WALKS]
    walks_all = [r for r in previous if r.get("data") not in done] + results
    walks_all.sort(key=lambda r: order.index(r["data"]) if r["data"] in order else len(order))
    record = {
        "command": command,
        "when": when,
        "note": (
            "a new user's path through the web UI with every default kept; texts are what "
            "the page showed (guessed target, split statement, progress box samples); each "
            "walk records the command that produced it"
        ),
        "walks": walks_all,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(record, indent=1, ensure_ascii=False))
    tmp_out.replace(args.out)
    logger.info("wrote %s", args.out)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
