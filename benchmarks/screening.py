"""Virtual screening at scale: ``matfuse screen`` on MOSES molecules and enumerated formulas.

Stages (each appended to the result as it finishes, so a stopped run keeps what it did):

1. ``moses``: the default fused molecule model (``DEFAULT_ENCODERS``, model ``auto``)
   trained on ESOL (MoleculeNet, FM4M split, train part), then the first ``--moses-rows``
   rows of the MOSES training set screened with 1 and then 2 local workers (same rows, same
   run: the scaling ratio), ranked by a window objective p(-4 <= logS <= -2).
2. ``compositions``: ``--formulas`` charge-balanced formulas enumerated from element lists
   and pymatgen's common oxidation states (A_a B_b X_x, two cations and one anion,
   a, b, x <= 6), screened with a composition model trained on matbench ``expt_gap``.
3. ``moses-full`` and ``compositions-full``: the whole MOSES training set and the whole
   enumerated formula library with 2 workers, in resumable chunks (``chunks.json``).
4. ``plan-memory`` (``--synthetic-rows``): the driver's scan and plan of a synthetic
   library of that many rows (its peak RSS), and ``memory`` (slow: a full screen of it).

Every stage records wall time, rows/s and the peak resident memory of the whole process
tree (this process, the Dask nanny and worker processes), sampled every 0.5 s with psutil.
A trivial baseline stands beside the rows/s: reading the library alone (parse only).

    python benchmarks/screening.py [--data DIR] [--moses-rows 20000] [--formulas 1000000]
        [--synthetic-rows 0] [--work /tmp/matfuse-screening] [--max-minutes 70]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from _data import RESULTS, data_root, provenance, write_json
from matfuse.workflow.screen import screen

ESOL_TARGET = "measured log solubility in mols per litre"
ANIONS = ["O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "P"]


class ProcessTree:
    """Peak summed RSS and total CPU time of this process and all its descendants.

    Sampled every ``every`` seconds in a thread; each process's CPU time is the last value
    seen for its pid (a worker that exits keeps what it had used when last sampled).
    """

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        root = psutil.Process()
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                with proc.oneshot():
                    total += proc.memory_info().rss
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every)

    def __enter__(self) -> ProcessTree:
        self._start_cpu = sum(self._sample_cpu().values())
        self._thread.start()
        return self

    def _sample_cpu(self) -> dict[int, float]:
        self._sample()
        return dict(self.cpu)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values()) - self._start_cpu

    @property
    def child_cpu_seconds(self) -> float:
        """CPU seconds of the processes started inside the block (the Dask workers)."""
        return sum(v for pid, v in self.cpu.items() if pid != os.getpid())


def timed_screen(model: Path, library: Path, out: Path, **kw: Any) -> dict[str, Any]:
    started = time.perf_counter()

    def progress(partitions: int, rows: int) -> None:  # in the log: a stopped run's rate
        elapsed = time.perf_counter() - started
        print(f"  {out.name}: {partitions} partitions, {rows} rows, {elapsed:.0f} s", flush=True)

    load = os.getloadavg()[0]
    with ProcessTree() as tree:
        result = screen(model, library, out, on_progress=progress, **kw)
    wall = time.perf_counter() - started
    per_cpu_s = result.rows / tree.cpu_seconds
    return {
        "load_1min_before": round(load, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
        "cpu_s_process_tree": round(tree.cpu_seconds, 1),
        # the driver (scheduler, client, this sampler) vs the worker processes: the driver's
        # share grows with wall time (an idle local cluster costs ~3 % of a core), so on a
        # loaded machine the whole-tree projection is the pessimistic one
        "cpu_s_workers": round(tree.child_cpu_seconds, 1),
        "rows_per_worker_cpu_s": round(result.rows / max(tree.child_cpu_seconds, 1e-9), 1),
        "rows_per_cpu_s": round(per_cpu_s, 1),
        # what 2 dedicated cores would give if all CPU time went to us (linear, labelled)
        "projected_rows_per_hour_2_dedicated_cores": round(2 * 3600 * per_cpu_s),
        "rows": result.rows,
        "invalid": result.invalid,
        "partitions": result.partitions,
        "failures": len(result.failures),
        "wall_s": round(wall, 1),
        "rows_per_s": round(result.rows / wall, 1),
        "rows_per_hour": round(3600 * result.rows / wall),
        "peak_rss_gb": round(tree.peak / 1e9, 3),
    }


def read_only_rate(library: Path) -> float:
    """The trivial baseline: rows/s of reading the library (no parsing into molecules)."""
    from matfuse.workflow.library import read_rows, scan_file

    started = time.perf_counter()
    info = scan_file(library)
    read_rows(info, 0, info.rows)
    return info.rows / (time.perf_counter() - started)


def train_esol(root: Path, out: Path) -> Path:
    """The default molecule model (whatever the default encoders are now) on ESOL train."""
    from matfuse.pipeline import DEFAULT_ENCODERS, PropertyModel

    out = out.with_name(f"{out.name}-{'+'.join(DEFAULT_ENCODERS)}")
    if not (out / "manifest.json").exists() and not out.exists():
        frame = pd.read_csv(root / "molecules" / "moleculenet" / "esol" / "train.csv")
        model = PropertyModel()
        model.fit(frame["smiles"].tolist(), frame[ESOL_TARGET].to_numpy(), target_names=["logS"])
        model.save(out)
    return out


def train_gap(root: Path, out: Path) -> Path:
    from matfuse.pipeline import PropertyModel

    if not out.exists():
        frame = pd.read_csv(root / "compositions" / "matbench" / "expt_gap.csv")
        model = PropertyModel(encoders=["composition"], input_type="composition")
        model.fit(frame["formula"].tolist(), frame["target"].to_numpy(), target_names=["gap"])
        model.save(out)
    return out


def _default_encoders() -> tuple[str, ...]:
    from matfuse.pipeline import DEFAULT_ENCODERS

    return DEFAULT_ENCODERS


def moses_prefix(root: Path, rows: int | None, out: Path) -> Path:
    """The first ``rows`` of the MOSES training set (``None``: all), its column ``smiles``."""
    if not out.exists():
        frame = pd.read_csv(root / "molecules" / "moses" / "train.csv.gz", nrows=rows)
        with gzip.open(out, "wt") as handle:
            frame.rename(columns={"SMILES": "smiles"}).to_csv(handle, index=False)
    return out


def _symbol(el: str, n: int) -> str:
    return f"{el}{n if n > 1 else ''}"


def enumerate_formulas(limit: int) -> list[str]:
    """Charge-balanced formulas from common oxidation states, in a fixed order.

    First A_a B_b X_x (two cations, one anion, a, b, x <= 6), then A_a B_b C_c X_x (three
    cations, a, b, c <= 3, x <= 8), until ``limit`` distinct formulas.
    """
    from pymatgen.core import Element

    cations = [
        el.symbol
        for el in Element
        if el.Z <= 83
        and (el.is_metal or el.is_metalloid)
        and any(s > 0 for s in el.common_oxidation_states)
    ]
    states = {c: sorted({s for s in Element(c).common_oxidation_states if s > 0}) for c in cations}
    anion_q = {x: -min(Element(x).common_oxidation_states) for x in ANIONS}
    seen: set[str] = set()
    out: list[str] = []

    def emit(parts: list[tuple[str, int]]) -> bool:
        formula = "".join(_symbol(el, n) for el, n in parts)
        if formula not in seen:
            seen.add(formula)
            out.append(formula)
        return len(out) >= limit

    for n_cations, most, most_x in ((2, 6, 6), (3, 3, 8)):
        for x in ANIONS:
            q = anion_q[x]
            for combo in itertools.combinations(cations, n_cations):
                for charges in itertools.product(*(states[c] for c in combo)):
                    for counts in itertools.product(range(1, most + 1), repeat=n_cations):
                        charge = sum(a * qa for a, qa in zip(counts, charges, strict=True))
                        if charge % q:
                            continue
                        n = charge // q
                        if n > most_x or math.gcd(*counts, n) != 1:
                            continue
                        if emit([*zip(combo, counts, strict=True), (x, n)]):
                            return out
    return out


def markdown(payload: dict[str, Any]) -> str:
    """The result as a table: rows/s (wall and per CPU second), memory, scaling, baseline."""
    lines = [
        "# Screening benchmark (`benchmarks/screening.py`)",
        "",
        f"Command: `{payload['provenance']['command']}`  ",
        f"Date: {payload['provenance']['date']}; {payload['provenance']['machine']}; "
        f"1-min load average {payload.get('machine_load_1min_at_start', float('nan')):.1f} at "
        f"start, {payload.get('machine_load_1min_at_end', float('nan')):.1f} at end "
        "(a shared machine: wall-clock rates are those of a small share of two cores).",
        "",
        "| library | workers | rows | wall s | rows/s (wall) | rows per CPU s | "
        "projected rows/h, 2 dedicated cores | peak RSS, process tree | failures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in payload["results"].items():
        if result.get("chunks"):  # a long screen in resumable chunks: its totals
            last = result["chunks"][-1]
            per_cpu = result.get("rows_per_cpu_s")
            projected = "" if not per_cpu else f"{round(2 * 3600 * per_cpu):,}"
            rows = f"{result['rows_written']:,}"
            by_chunks = result.get("rows_written_by_these_chunks", result["rows_written"])
            if by_chunks != result["rows_written"]:  # the rates are those of the chunks
                rows = f"{by_chunks:,} (of {result['rows_written']:,}, resumed)"
            lines.append(
                f"| {name} | {result.get('workers', 2)} | {rows} | "
                f"{result.get('wall_s_all_chunks', '')} | "
                f"{result.get('rows_per_s_wall_all_chunks', '')} | {per_cpu or ''} | "
                f"{projected} | {result['peak_rss_gb_max_over_chunks']} GB | "
                f"{last.get('failures', '')} |"
            )
        for key, run in result.items():
            if not isinstance(run, dict):
                continue
            projected = run.get("projected_rows_per_hour_2_dedicated_cores")
            lines.append(
                f"| {name} | {key.split('_')[0]} | {run['rows']:,} | {run['wall_s']} | "
                f"{run['rows_per_s']} | {run.get('rows_per_cpu_s', '')} | "
                f"{'' if projected is None else f'{projected:,}'} | "
                f"{run['peak_rss_gb']} GB | {run['failures']} |"
            )
    lines.append("")
    for name, result in payload["results"].items():
        lines.append(f"**{name}**: {result.get('library', '')}; model: {result.get('model', '')}.")
        extra = {
            k: v
            for k, v in result.items()
            if not isinstance(v, dict | list) and k not in ("library", "model")
        }
        for key, value in extra.items():
            lines.append(f"- {key}: {value}")
        if result.get("chunks"):
            lines += [
                "",
                "| chunk | complete | rows written (total) | wall s | CPU s | peak RSS | load |",
                "|---|---|---|---|---|---|---|",
            ]
            for i, c in enumerate(result["chunks"], 1):
                lines.append(
                    f"| {i} | {c['complete']} | {c['rows_written_total']:,} | {c['wall_s']} | "
                    f"{c['cpu_s_process_tree']} | {c['peak_rss_gb']} GB | "
                    f"{c['load_1min_before']} -> {c['load_1min_after']} |"
                )
        lines.append("")
    lines.append(
        "Trivial baseline: `baseline_read_only_rows_per_s` is reading the library alone (no "
        "parsing into molecules, no model). No published screening throughput is listed in "
        "shared/anchors.md to set beside these numbers. The projection divides rows by the "
        "CPU seconds of the whole process tree (driver, nannies, workers, start-up included) "
        "and assumes two dedicated cores; it is a projection, not a measurement."
    )
    return "\n".join(lines) + "\n"


def plan_memory(root: Path, work: Path, rows: int) -> dict[str, Any]:
    """The driver's side of a ``rows``-row library: scan, plan, and one worker partition read.

    Only the driver's memory is measured here (every file is read once to count rows and
    decide dtypes); a worker holds one partition at a time, whatever the library's size.
    """
    import resource

    from matfuse.workflow.library import read_rows
    from matfuse.workflow.screen import plan_screen

    model = train_gap(root, work / "gap-model")
    library = work / f"synthetic-{rows}.csv"
    if not library.exists():
        rng = np.random.default_rng(0)
        pool = np.array(enumerate_formulas(1000))
        with open(library, "w") as handle:
            handle.write("formula,id\n")
            for start in range(0, rows, 1_000_000):
                n = min(1_000_000, rows - start)
                ids = range(start, start + n)
                handle.write(
                    "\n".join(f"{f},{i}" for f, i in zip(rng.choice(pool, n), ids, strict=True))
                )
                handle.write("\n")
    started = time.perf_counter()
    plan = plan_screen(model, library, work / f"plan-{rows}", partition_rows=50_000)
    seconds = time.perf_counter() - started
    last = plan.partitions[-1]
    frame = read_rows(last.file, last.start, last.stop)
    return {
        "library": f"{rows:,} synthetic rows (formula, id)",
        "rows_planned": plan.rows,
        "partitions": len(plan.partitions),
        "scan_and_plan_s": round(seconds, 1),
        "last_partition_rows_read": len(frame),
        "driver_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
    }


class _Stop(Exception):
    """Raised from the progress callback at the deadline: the screen stops, to be resumed."""


def synthetic_parquet(path: Path, rows: int, pool: list[str], group_rows: int) -> Path:
    """``rows`` formulas drawn (seeded) from ``pool``, with an ``id``; one row group per
    ``group_rows`` rows, so a worker reads only the groups of its partition."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    choices = np.array(pool, dtype=object)
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("formula", pa.string()), ("id", pa.int64())])
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, group_rows):
            n = min(group_rows, rows - start)
            table = pa.table(
                {
                    "formula": pa.array(choices[rng.integers(len(choices), size=n)], pa.string()),
                    "id": pa.array(np.arange(start, start + n), pa.int64()),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=group_rows)
    tmp.rename(path)
    return path


def train_gap_linear(root: Path, out: Path) -> Path:
    """The cheapest honest model for the memory run: composition features + RidgeCV."""
    from matfuse.pipeline import PropertyModel

    if not out.exists():
        frame = pd.read_csv(root / "compositions" / "matbench" / "expt_gap.csv")
        model = PropertyModel(encoders=["composition"], input_type="composition", model="linear")
        model.fit(frame["formula"].tolist(), frame["target"].to_numpy(), target_names=["gap"])
        model.save(out)
    return out


def chunked_screen(
    model: Path,
    library: Path,
    out: Path,
    partition_rows: int,
    deadline: float,
    label: str,
    **kw: Any,
) -> tuple[list[dict[str, Any]], bool]:
    """One chunk of a long screen with 2 workers: resume, run until done or the deadline.

    The screen resumes from the partitions already written (the engine's resume). Each
    chunk records its peak RSS of the whole process tree, CPU seconds and the rows written
    so far; the chunks accumulate in ``out/chunks.json``, so a screen that takes several
    invocations (or survives a kill) is reported whole.
    """
    import json

    record = out / "chunks.json"
    chunks = json.loads(record.read_text()) if record.exists() else []
    started = time.perf_counter()

    def progress(partitions: int, done: int) -> None:
        print(
            f"  {label}: {partitions} partitions, {done} rows this chunk, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if time.time() > deadline:
            raise _Stop

    load = os.getloadavg()[0]
    complete = True
    rows_before = _written(out)[0]  # this chunk's rate counts only what it wrote
    with ProcessTree() as tree:
        try:
            result = screen(
                model,
                library,
                out,
                top=100,
                workers=2,
                partition_rows=partition_rows,
                on_progress=progress,
                **kw,
            )
        except _Stop:
            complete = False
    written, n_parts = _written(out)
    chunk = {
        "complete": complete,
        "rows_before_chunk": rows_before,
        "rows_written_total": written,
        "partitions_written_total": n_parts,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s_process_tree": round(tree.cpu_seconds, 1),
        # the driver (scheduler, client, this sampler) vs the worker processes: the driver's
        # share grows with wall time (an idle local cluster costs ~3 % of a core), so on a
        # loaded machine the whole-tree projection is the pessimistic one
        "cpu_s_workers": round(tree.child_cpu_seconds, 1),
        # a chunk stopped at the deadline has no screen result: count the rows it wrote
        "rows_per_worker_cpu_s": round(
            (written - rows_before) / max(tree.child_cpu_seconds, 1e-9), 1
        ),
        "peak_rss_gb": round(tree.peak / 1e9, 3),
        "load_1min_before": round(load, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }
    if complete:
        chunk.update(
            {
                "rows": result.rows,
                "invalid": result.invalid,
                "failures": len(result.failures),
                "resumed_partitions": result.resumed,
            }
        )
    chunks.append(chunk)
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(chunks, indent=2) + "\n")
    return chunks, complete


def _written(out: Path) -> tuple[int, int]:
    """Rows and partition files written so far under ``out/predictions``."""
    import pyarrow.parquet as pq

    parts = sorted((out / "predictions").glob("part-*.parquet"))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts), len(parts)


def chunk_summary(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the chunks of a screen: rows written, CPU, the worst peak memory.

    Rates count only the rows the recorded chunks wrote (a screen resumed from partitions
    written by an unrecorded run would otherwise look faster than it is)."""
    total = chunks[-1]["rows_written_total"]
    done = total - chunks[0].get("rows_before_chunk", 0)
    cpu = sum(c["cpu_s_process_tree"] for c in chunks)
    wall = sum(c["wall_s"] for c in chunks)
    return {
        "chunks": chunks,
        "rows_written": total,
        "rows_written_by_these_chunks": done,
        "complete": chunks[-1]["complete"],
        "peak_rss_gb_max_over_chunks": max(c["peak_rss_gb"] for c in chunks),
        "wall_s_all_chunks": round(wall, 1),
        "rows_per_s_wall_all_chunks": round(done / wall, 1) if wall else None,
        "rows_per_hour_wall_all_chunks": round(3600 * done / wall) if wall else None,
        "cpu_s_all_chunks": round(cpu, 1),
        "rows_per_cpu_s": round(done / cpu, 1) if cpu else None,
    }


def memory_run(root: Path, work: Path, args: argparse.Namespace, deadline: float) -> dict:
    """A real screen of ``--synthetic-rows`` rows (2 workers), in resumable chunks."""
    rows = args.synthetic_rows
    model = train_gap_linear(root, work / "gap-linear-model")
    enumerated = work / f"formulas-{args.formulas}.csv.gz"  # the compositions stage's library
    if enumerated.exists() and args.formulas >= args.synthetic_pool:
        pool = pd.read_csv(enumerated, nrows=args.synthetic_pool)["formula"].tolist()
    else:
        pool = enumerate_formulas(args.synthetic_pool)
    library = synthetic_parquet(
        work / f"synthetic-{rows}-pool{len(pool)}.parquet", rows, pool, args.memory_partition_rows
    )
    out = work / f"synthetic-{rows}-out"
    chunks, _ = chunked_screen(model, library, out, args.memory_partition_rows, deadline, "memory")
    return {
        "library": f"{rows:,} synthetic rows (formula, id; parquet, row groups of "
        f"{args.memory_partition_rows:,}) drawn with replacement from {len(pool):,} "
        "enumerated formulas",
        "model": "composition encoder + linear (RidgeCV, conformal), trained on expt_gap",
        "partition_rows": args.memory_partition_rows,
        **chunk_summary(chunks),
    }


def moses_full(root: Path, work: Path, args: argparse.Namespace, deadline: float) -> dict:
    """The whole MOSES training set through the default model, 2 workers, resumable."""
    model = train_esol(root, work / "esol-model")
    library = moses_prefix(root, None, work / "moses-all.csv.gz")
    out = work / f"moses-all-out-{args.partition_rows}"
    spec = {"terms": [{"property": "model", "path": str(model), "min": -4.0, "max": -2.0}]}
    chunks, complete = chunked_screen(
        model, library, out, args.partition_rows, deadline, "moses-full", objective=spec
    )
    summary = chunk_summary(chunks)
    if complete:
        top = pd.read_csv(out / "top.csv")
        summary["top_10"] = top.head(10)[["row_id", "smiles", "pred_logS", "objective"]].to_dict(
            "records"
        )
    return {
        "library": "MOSES train.csv.gz, all 1,584,663 rows",
        "model": f"default fused ({', '.join(_default_encoders())}; auto) trained on ESOL train",
        "objective": "p(-4 <= logS <= -2) from the predicted mean and std",
        "partition_rows": args.partition_rows,
        "workers": 2,
        **summary,
    }


def compositions_full(
    root: Path, work: Path, args: argparse.Namespace, deadline: float
) -> dict[str, Any]:
    """The whole enumerated formula library through the composition model, 2 workers."""
    model = train_gap(root, work / "gap-model")
    library = formula_library(work, args.formulas)
    out = work / f"formulas-{args.formulas}-all-out-{args.partition_rows * 2}"
    chunks, _ = chunked_screen(
        model, library, out, args.partition_rows * 2, deadline, "compositions-full"
    )
    return {
        "library": f"{args.formulas:,} charge-balanced formulas enumerated (pymatgen common "
        "oxidation states: A_a B_b X_x, then A_a B_b C_c X_x), all screened",
        "model": "composition encoder + auto, trained on matbench expt_gap",
        "partition_rows": args.partition_rows * 2,
        "workers": 2,
        **chunk_summary(chunks),
    }


def formula_library(work: Path, formulas: int) -> Path:
    library = work / f"formulas-{formulas}.csv.gz"
    if not library.exists():
        with gzip.open(library, "wt") as handle:
            pd.DataFrame({"formula": enumerate_formulas(formulas)}).to_csv(handle, index=False)
    return library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--moses-rows", type=int, default=20_000)
    parser.add_argument("--formulas", type=int, default=1_000_000)
    parser.add_argument(
        "--formula-rows", type=int, default=0, help="screen only this prefix (0: all)"
    )
    parser.add_argument("--synthetic-rows", type=int, default=0)
    parser.add_argument(
        "--synthetic-pool",
        type=int,
        default=1_000_000,
        help="formulas the synthetic library draws from",
    )
    parser.add_argument("--memory-partition-rows", type=int, default=50_000)
    parser.add_argument("--partition-rows", type=int, default=5_000)
    parser.add_argument("--work", default="/tmp/matfuse-screening")
    parser.add_argument("--max-minutes", type=float, default=70.0)
    parser.add_argument("--stages", default="moses,compositions,plan-memory")
    parser.add_argument("--out", default=str(RESULTS / "screening.json"))
    parser.add_argument(
        "--keep", action="store_true", help="keep the results of stages not rerun in --out"
    )
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from --out")
    args = parser.parse_args()
    if args.markdown_only:
        import json

        result = json.loads(Path(args.out).read_text())
        Path(args.out).with_suffix(".md").write_text(markdown(result))
        return
    deadline = time.time() + 60 * args.max_minutes
    root = data_root(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(",")
    payload: dict[str, Any] = {
        "provenance": provenance(),
        "machine_load_1min_at_start": os.getloadavg()[0],
        "results": {},
        "note": (
            "shared 2-core machine with other jobs running (see load averages); rows/s are "
            "end to end (read, parse, encode, fuse, predict, score, write parquet)"
        ),
    }

    if args.keep and Path(args.out).exists():  # stages not rerun keep their last result
        import json

        before = json.loads(Path(args.out).read_text())
        payload["earlier_runs"] = {
            name: result.get("command", before["provenance"]["command"])
            for name, result in before["results"].items()
        }
        for result in before["results"].values():
            result.setdefault("command", before["provenance"]["command"])
            result.setdefault("date", before["provenance"]["date"])
        payload["results"] = before["results"]

    def save() -> None:
        payload["machine_load_1min_at_end"] = os.getloadavg()[0]
        for result in payload["results"].values():  # each stage says what produced it
            result.setdefault("command", payload["provenance"]["command"])
            result.setdefault("date", payload["provenance"]["date"])
        write_json(Path(args.out), payload)
        Path(args.out).with_suffix(".md").write_text(markdown(payload))

    if "moses" in stages and time.time() < deadline:
        model = train_esol(root, work / "esol-model")
        library = moses_prefix(root, args.moses_rows, work / f"moses-{args.moses_rows}.csv.gz")
        spec = {
            "terms": [{"property": "model", "path": str(model), "min": -4.0, "max": -2.0}],
        }
        runs = {}
        for workers in (1, 2):
            out = work / f"moses-out-{workers}w"
            if out.exists():
                import shutil

                shutil.rmtree(out)
            runs[f"{workers}_workers"] = timed_screen(
                model,
                library,
                out,
                top=100,
                workers=workers,
                partition_rows=args.partition_rows,
                objective=spec,
            )
            print("moses", workers, runs[f"{workers}_workers"], flush=True)
        one, two = runs["1_workers"], runs["2_workers"]
        payload["results"]["moses"] = {
            "library": f"MOSES train.csv.gz, first {args.moses_rows} of 1,584,663 rows",
            "model": f"default fused ({', '.join(_default_encoders())}; auto) trained on ESOL "
            "train",
            "objective": "p(-4 <= logS <= -2) from the predicted mean and std",
            **runs,
            "speedup_2_over_1": round(two["rows_per_s"] / one["rows_per_s"], 3),
            "baseline_read_only_rows_per_s": round(read_only_rate(library), 1),
            "extrapolated_full_moses_hours_2_workers": round(
                1_584_663 / two["rows_per_s"] / 3600, 2
            ),
        }
        save()
    if "compositions" in stages and time.time() < deadline:
        model = train_gap(root, work / "gap-model")
        library = formula_library(work, args.formulas)
        n = int(pd.read_csv(library).shape[0])
        screened = library
        if args.formula_rows and args.formula_rows < n:
            screened = work / f"formulas-{args.formulas}-first-{args.formula_rows}.csv.gz"
            if not screened.exists():
                head = pd.read_csv(library, nrows=args.formula_rows)
                with gzip.open(screened, "wt") as handle:
                    head.to_csv(handle, index=False)
        runs = {}
        for workers in (1, 2):
            out = work / f"formulas-out-{workers}w"
            if out.exists():
                import shutil

                shutil.rmtree(out)
            runs[f"{workers}_workers"] = timed_screen(
                model,
                screened,
                out,
                top=100,
                workers=workers,
                partition_rows=args.partition_rows * 2,
            )
            print("compositions", workers, runs[f"{workers}_workers"], flush=True)
        one, two = runs["1_workers"], runs["2_workers"]
        rows = args.formula_rows if screened != library else n
        payload["results"]["compositions"] = {
            "library": f"{n} charge-balanced formulas enumerated (pymatgen common oxidation "
            "states: A_a B_b X_x, then A_a B_b C_c X_x); "
            + ("all screened" if screened == library else f"the first {rows} screened"),
            "model": "composition encoder + auto, trained on matbench expt_gap",
            **runs,
            "speedup_2_over_1": round(two["rows_per_s"] / one["rows_per_s"], 3),
            "extrapolated_full_library_hours_2_workers (wall, this load)": round(
                n / two["rows_per_s"] / 3600, 2
            ),
            "extrapolated_full_library_hours_2_dedicated_cores (from CPU s)": round(
                n / two["projected_rows_per_hour_2_dedicated_cores"], 2
            ),
            "baseline_read_only_rows_per_s": round(read_only_rate(screened), 1),
        }
        save()
    if "compositions-full" in stages and time.time() < deadline:
        payload["results"]["compositions_full"] = compositions_full(root, work, args, deadline)
        print("compositions-full", payload["results"]["compositions_full"], flush=True)
        save()
    if "plan-memory" in stages and args.synthetic_rows and time.time() < deadline:
        payload["results"]["plan_memory"] = plan_memory(root, work, args.synthetic_rows)
        print("plan-memory", payload["results"]["plan_memory"], flush=True)
        save()
    if "moses-full" in stages and time.time() < deadline:
        payload["results"]["moses_full"] = moses_full(root, work, args, deadline)
        print("moses-full", payload["results"]["moses_full"], flush=True)
        save()
    if "memory" in stages and args.synthetic_rows and time.time() < deadline:
        payload["results"]["memory"] = memory_run(root, work, args, deadline)
        print("memory", payload["results"]["memory"], flush=True)
        save()
    save()


if __name__ == "__main__":
    main()
