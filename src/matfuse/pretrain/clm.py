"""Training the chemical language model on a corpus: streaming, resumable, time-boxed.

``train_clm(corpus, out, ...)`` is what ``matfuse clm-train`` runs. The run directory holds
``run.json`` (configuration, vocabulary and every command that trained it),
``metrics.jsonl`` (training loss every ``log_every`` steps; held-out NLL and the validity of a
few samples every ``eval_every``), ``checkpoint/`` (weights, optimiser, RNG, stream position),
``best/`` (the model with the lowest held-out NLL so far) and ``model/`` (the last state), both
loadable with :func:`matfuse.foundation.clm.load_clm`.

Rerunning the same command on a run directory resumes exactly where the last checkpoint was
(same batches, optimiser and RNG), so a run can be trained in chunks of ``max_minutes``;
``max_minutes`` is per invocation. The corpus is streamed in chunks by
:class:`matfuse.pretrain.data.CorpusStream` (shuffled across the corpus by default); its
``n_heldout`` held-out rows are never trained on.

Data-parallel: started by ``torchrun --nproc-per-node N`` (``WORLD_SIZE`` set), each process
takes every N-th batch of the same stream and gradients are averaged by PyTorch DDP (gloo on
CPU, NCCL on GPUs), so one step sees N batches; rank 0 alone writes logs, checkpoints and
exports, and decides when time is up.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from matfuse.foundation.clm import (
    ChemicalLanguageModel,
    CLMConfig,
    clm_meta,
    load_clm,
    next_token_loss,
    save_clm,
)
from matfuse.foundation.examples import make_examples
from matfuse.foundation.tokenizers import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
    SmilesTokenizer,
    Tokenizer,
    canonical_smiles,
)
from matfuse.inputs.writers import write_text
from matfuse.pretrain.checkpoint import load_training_state, save_training_state
from matfuse.pretrain.data import (
    CorpusStream,
    StreamPosition,
    heldout_description,
    read_corpus,
)
from matfuse.pretrain.distributed import init_distributed
from matfuse.pretrain.schedule import ScheduleConfig, append_jsonl, learning_rate, resumed_config
from matfuse.pretrain.trainer import _hardware, resolve_device

__all__ = ["CLMTrainConfig", "recover_checkpoint", "train_clm"]

logger = logging.getLogger(__name__)


@dataclass
class CLMTrainConfig(ScheduleConfig):
    """Optimisation and bookkeeping of one language-model run."""

    steps: int = 100_000
    warmup: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    max_len: int = 128
    checkpoint_every: int = 200
    eval_every: int = 500
    log_every: int = 50
    n_heldout: int = 2000
    eval_samples: int = 200
    chunk_size: int = 20_000
    vocab_rows: int = 200_000
    #: "shuffled" (rows permuted across the corpus every epoch, held-out rows a random
    #: sample) or "file" (file order; runs saved before this option existed)
    stream_order: str = "shuffled"
    seed: int = 0
    #: the epoch a new run's data stream starts at. A run initialised from an earlier run's
    #: weights (same corpus, same seed, so the same held-out rows) would otherwise replay
    #: epoch 0's permutation in the order it already saw; starting at the next unseen epoch
    #: gives it a fresh order without moving the held-out split.
    start_epoch: int = 0
    threads: int | None = None
    device: str = "auto"
    #: training time of this invocation; rerun the command to continue
    max_minutes: float | None = None


def recover_checkpoint(ckpt: Path) -> None:
    """Finish a checkpoint swap a kill interrupted.

    :func:`save_training_state` writes ``checkpoint.tmp`` completely (``state.json`` last), then
    removes the old checkpoint and renames; a kill between those two leaves only the finished
    temporary directory, which is then the newest complete state.
    """
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    if not (ckpt / "state.json").exists() and (tmp / "state.json").exists():
        logger.warning("completing an interrupted checkpoint swap in %s", ckpt.parent)
        if ckpt.exists():
            import shutil

            shutil.rmtree(ckpt)
        os.replace(tmp, ckpt)


@torch.no_grad()
def evaluate(
    model: ChemicalLanguageModel, heldout: list[list[int]], n_samples: int, seed: int
) -> dict[str, float]:
    """Held-out NLL (per token and per molecule) and validity/uniqueness of ``n_samples``."""
    from matfuse.foundation.autoencoder import pad_sequences

    was_training = model.training
    model.eval()
    nll, tokens, mols = 0.0, 0, 0
    for i in range(0, len(heldout), 256):
        batch = pad_sequences(heldout[i : i + 256]).to(model.device)
        nll -= float(model.token_log_probs(batch).sum())
        tokens += int((batch[:, 1:] != 0).sum())
        mols += batch.shape[0]
    out: dict[str, float] = {
        "heldout_nll_token": nll / max(1, tokens),
        "heldout_nll_mol": nll / max(1, mols),
    }
    if n_samples:
        smiles, _ = model.sample(
            n_samples, generator=torch.Generator(model.device).manual_seed(seed)
        )
        valid = [c for c in (canonical_smiles(s) for s in smiles) if c]
        out["validity"] = len(valid) / n_samples
        out["uniqueness"] = len(set(valid)) / max(1, len(valid))
    model.train(was_training)
    return out


def train_clm(
    corpus: str | Path,
    out: str | Path,
    model_cfg: CLMConfig | None = None,
    train_cfg: CLMTrainConfig | None = None,
    *,
    init: str | Path | None = None,
    command: str = "",
    progress: bool = False,
) -> Path:
    """Train (or resume) a language model on a SMILES corpus; returns the ``best/`` directory.

    ``init`` (a shipped name such as ``clm`` or a model directory) starts from that model's
    weights, architecture and vocabulary: fine-tuning on a focused library. Molecules the
    vocabulary cannot spell are skipped (a ``<unk>`` token would have probability zero).
    """
    out = Path(out)
    rank, world = _init_distributed(train_cfg.device if train_cfg else "auto")
    lead = rank == 0
    if not lead:
        torch.distributed.barrier()  # rank 0 writes (or updates) run.json first
    out.mkdir(parents=True, exist_ok=True)
    run_file, ckpt = out / "run.json", out / "checkpoint"
    start: ChemicalLanguageModel | None = None
    if run_file.exists():  # resuming: the saved configuration wins, but may be given more time
        run = json.loads(run_file.read_text())
        model_cfg = CLMConfig.from_dict(run["model"])
        train_cfg = resumed_config(
            CLMTrainConfig, run["train"], train_cfg, ("steps", "max_minutes", "threads", "device")
        )
        run["train"] = asdict(train_cfg)
        if command and lead:
            run["commands"].append(command)
            write_text(json.dumps(run, indent=2), run_file)
        tokenizer = Tokenizer.from_dict(run["tokenizer"])
    else:
        train_cfg = train_cfg or CLMTrainConfig()
        if init is not None:
            start = load_clm(init)
            model_cfg, tokenizer = start.config, start.tokenizer
        else:
            model_cfg = model_cfg or CLMConfig()
            tokenizer = SmilesTokenizer().fit(read_corpus(corpus, limit=train_cfg.vocab_rows))
        run = {
            "corpus": str(corpus),
            "commands": [command] if command else [],
            "model": model_cfg.to_dict(),
            "train": asdict(train_cfg),
            "tokenizer": tokenizer.to_dict(),
        }
        if init is not None:
            run["init"] = {"source": str(init), "meta": clm_meta(start) if start else {}}
        write_text(json.dumps(run, indent=2), run_file)
    if lead and world > 1:
        torch.distributed.barrier()

    device = resolve_device(train_cfg.device)
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    model = ChemicalLanguageModel(model_cfg, tokenizer).to(device)
    net: torch.nn.Module = model
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
    )
    stream = CorpusStream(
        corpus,
        tokenizer,
        train_cfg.batch_size,
        train_cfg.max_len,
        chunk_size=train_cfg.chunk_size,
        n_heldout=train_cfg.n_heldout,
        seed=train_cfg.seed,
        order="file" if train_cfg.stream_order == "file" else "shuffled",
    )
    heldout = [
        e.ids
        for e in make_examples(stream.heldout(), tokenizer, train_cfg.max_len, False)
        if UNK_ID not in e.ids
    ]
    step, elapsed, tokens_seen, best = 0, 0.0, 0, math.inf
    position = StreamPosition(epoch=train_cfg.start_epoch)
    cpu_before = 0.0
    running: dict[str, float] = {}
    recover_checkpoint(ckpt)
    if (ckpt / "state.json").exists():
        state = load_training_state(ckpt, model, optimizer, device)
        step, elapsed = state["step"], state["elapsed_s"]
        position = StreamPosition(**state["position"])
        tokens_seen, best = state["tokens_seen"], state["best_nll"]
        cpu_before = float(state.get("cpu_s", 0.0))
        running = {k: float(v) for k, v in state.get("running", {}).items()}
    elif "init" in run:
        start = start or load_clm(run["init"]["source"])
        model.load_state_dict(start.state_dict())
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)  # also makes every rank start from rank 0's weights
    metrics_file = out / "metrics.jsonl"
    began = time.perf_counter()
    cpu0 = cpu_before - time.process_time()
    deadline = None if train_cfg.max_minutes is None else train_cfg.max_minutes * 60

    def wall() -> float:
        return elapsed + time.perf_counter() - began

    def meta() -> dict:
        return {
            "corpus": Path(corpus).name,
            "steps": step,
            "batch_size": train_cfg.batch_size * world,
            "world_size": world,
            "molecules_seen": step * train_cfg.batch_size * world,
            "tokens_seen": tokens_seen,
            "wall_time_s": round(wall(), 1),
            "hardware": _hardware(device),
            "n_parameters": model.n_parameters(),
            "best_heldout_nll_mol": best,
            "commands": run["commands"],
            "train": asdict(train_cfg),
        }

    def checkpoint() -> None:
        save_training_state(
            ckpt,
            model,
            optimizer,
            {
                "step": step,
                "elapsed_s": wall(),
                "position": asdict(position),
                "tokens_seen": tokens_seen,
                "best_nll": best,
                "cpu_s": cpu0 + time.process_time(),
                "running": dict(running),
            },
        )

    batches = stream(position)
    model.train()
    last_report = time.perf_counter()
    while step < train_cfg.steps:
        stop = deadline is not None and time.perf_counter() - began > deadline
        if world > 1:  # rank 0's clock decides for everyone, or the ranks would deadlock
            flag = torch.tensor([float(stop)], device=device)  # NCCL needs GPU tensors
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            break
        for r in range(world):  # this rank's batch is the rank-th of the next `world`
            position, candidate = next(batches)
            if r == rank:
                batch = candidate
        ids = batch.tokens
        keep = ~(ids == UNK_ID).any(dim=1)
        if not bool(keep.all()):
            # <unk> has probability zero; a fully unknown batch becomes an empty molecule
            # under data parallelism (every rank must step together), else it is skipped
            ids = ids[keep] if bool(keep.any()) else ids[:1, :0]
        if ids.shape[1] == 0 and world == 1:
            continue
        if ids.shape[1] == 0:
            ids = torch.tensor([[BOS_ID, EOS_ID]])
        ids = ids.to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, train_cfg)
        if world > 1:
            logits, _ = net(ids[:, :-1])
            loss = next_token_loss(logits, ids)
        else:
            loss = model.loss(ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        optimizer.step()
        step += 1
        n_tokens = (ids[:, 1:] != 0).sum().reshape(1)
        if world > 1:
            torch.distributed.all_reduce(n_tokens)
        tokens_seen += int(n_tokens.item())
        if not lead:
            continue
        running["loss"] = running.get("loss", 0.0) + float(loss.detach())
        if step % train_cfg.log_every == 0:
            record = {
                "step": step,
                "event": "train",
                "lr": learning_rate(step, train_cfg),
                "loss": running.pop("loss") / train_cfg.log_every,
                "tokens_seen": tokens_seen,
                "elapsed_s": round(wall(), 1),
                # CPU seconds of this process (shared machines: wall time overstates cost)
                "cpu_s": round(cpu0 + time.process_time(), 1),
            }
            append_jsonl(metrics_file, record)
            if progress and time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                print(json.dumps(record), file=sys.stderr, flush=True)
        if step % train_cfg.eval_every == 0:
            metrics = evaluate(model, heldout, train_cfg.eval_samples, seed=step)
            append_jsonl(
                metrics_file,
                {"step": step, "event": "eval", "elapsed_s": round(wall(), 1), **metrics},
            )
            if metrics["heldout_nll_mol"] < best:
                best = metrics["heldout_nll_mol"]
                save_clm(model, out / "best", meta={**meta(), "heldout": metrics})
        if step % train_cfg.checkpoint_every == 0:
            checkpoint()
    if not lead:
        torch.distributed.barrier()  # rank 0 exports
        return out / "best"
    checkpoint()
    final = evaluate(model, heldout, train_cfg.eval_samples, seed=step)
    append_jsonl(
        metrics_file, {"step": step, "event": "final", "elapsed_s": round(wall(), 1), **final}
    )
    if final["heldout_nll_mol"] < best:
        best = final["heldout_nll_mol"]
        save_clm(model, out / "best", meta={**meta(), "heldout": final})
        checkpoint()  # the best NLL is part of the state a resume continues from
    save_clm(model, out / "model", meta={**meta(), "heldout": final})
    if world > 1:
        torch.distributed.barrier()
    return out / "best"


def _init_distributed(device: str) -> tuple[int, int]:
    """(rank, world size): see :func:`matfuse.pretrain.distributed.init_distributed`."""
    return init_distributed(device)


def load_run_model(run_dir: str | Path, weights: str = "checkpoint") -> ChemicalLanguageModel:
    """The model of a run directory from its ``run.json`` and the weights of ``weights``
    (``checkpoint``, ``best`` or ``model``): how a checkpoint is exported or evaluated while the
    run is still going.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    model = ChemicalLanguageModel(
        CLMConfig.from_dict(run["model"]), Tokenizer.from_dict(run["tokenizer"])
    )
    if weights == "checkpoint":
        recover_checkpoint(run_dir / "checkpoint")
    model.load_state_dict(load_file(run_dir / weights / "model.safetensors"))
    return model.eval()


def run_summary(run_dir: str | Path) -> dict:
    """Steps, tokens, wall and CPU time of a run, from its checkpoint and metrics log."""
    run_dir = Path(run_dir)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["event"] in ("eval", "final")]
    return {
        "steps": state["step"],
        "tokens_seen": state["tokens_seen"],
        "wall_s": round(state["elapsed_s"], 1),
        "cpu_s": round(state.get("cpu_s", 0.0), 1),
        "last_eval": evals[-1] if evals else None,
        "best_heldout_nll_mol": state["best_nll"],
    }


def export_clm(
    run_dir: str | Path,
    target: str | Path,
    weights: str = "best",
    benchmark: dict | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Copy a run's ``best`` (or ``model``/``checkpoint``) weights to a model directory with a
    model card saying what the model saw, how good it is and how to continue training it."""
    from matfuse.foundation.clm import load_clm

    run_dir, target = Path(run_dir), Path(target)
    run = json.loads((run_dir / "run.json").read_text())
    if weights == "checkpoint":
        model = load_run_model(run_dir)
        meta: dict[str, Any] = {"heldout": None}
    else:
        model = load_clm(run_dir / weights)
        meta = clm_meta(model)
    summary = run_summary(run_dir)
    meta = {**meta, "exported_from": f"{run_dir.name}/{weights}", "run_at_export": summary}
    save_clm(model, target, meta=meta)
    write_text(clm_model_card(model, run, meta, benchmark, notes or []), target / "MODEL_CARD.md")
    return target


def clm_model_card(
    model: ChemicalLanguageModel, run: dict, meta: dict, benchmark: dict | None, notes: list[str]
) -> str:
    """The card: data, steps, tokens, wall and CPU time, hardware, metrics, commands, resume."""
    run_now = meta["run_at_export"]
    cfg = run["train"]
    lines = [
        "# clm — autoregressive SMILES language model",
        "",
        f"A {model.config.arch.upper()} chemical language model "
        f"({model.config.n_layers} layers, width {model.config.d_model}, "
        f"{model.n_parameters():,} parameters, {len(model.vocab)} tokens) over RDKit canonical "
        "SMILES (Molecular Transformer regex tokens). `load_clm('clm')`, "
        "`matfuse decode --model clm --sample N`, objective term `clm_loglik`, SMC `prior=clm`.",
        "",
        "## Training",
        f"- data: `{Path(run['corpus']).name}`, {heldout_description(cfg)} held out and never "
        "trained on",
        f"- these weights: step {meta.get('steps')} × batch {cfg['batch_size']} = "
        f"{meta.get('molecules_seen', 0):,} molecules, {meta.get('tokens_seen', 0):,} tokens "
        f"(the lowest held-out NLL of the run; run at export: step {run_now['steps']}, "
        f"{run_now['tokens_seen']:,} tokens)",
        f"- wall time {run_now['wall_s'] / 60:.1f} min, process CPU time "
        f"{run_now['cpu_s'] / 60:.1f} min, on {meta.get('hardware', '?')}",
        f"- schedule: AdamW, peak lr {cfg['lr']}, {cfg['warmup']} warm-up steps, cosine to "
        f"{cfg['steps']} steps (the run stopped at step {run_now['steps']})",
        "",
        "## Held-out metrics (at these weights)",
        "",
        "```json",
        json.dumps(meta.get("heldout"), indent=2),
        "```",
    ]
    if "init" in run:  # fine-tuned or continued from another model: say what it had seen
        start = run["init"].get("meta", {})
        lines += [
            "",
            "## Started from",
            "",
            f"`{run['init']['source']}`: step {start.get('steps', '?')}, "
            f"{start.get('molecules_seen', 0):,} molecules, "
            f"{start.get('wall_time_s', 0) / 60:.1f} min wall, trained "
            + (
                f"with {heldout_description(start['train'])} held out"
                if "train" in start
                else "as its own card says"
            )
            + ". Its commands:",
            "",
            "```bash",
            *start.get("commands", []),
            "```",
        ]
    if benchmark:
        lines += ["", "## Benchmark (benchmarks/clm.py)", "", "```json"]
        lines += [json.dumps(benchmark, indent=2), "```"]
    lines += ["", "## Commands that trained it", "", "```bash", *run["commands"], "```"]
    lines += [
        "",
        "## Continue training (resumes exactly from the checkpoint)",
        "",
        "Rerun the last command on the same run directory (the checkpoint holds weights, "
        "optimiser, RNG and stream position), e.g. with more `--steps` and `--max-minutes`, or "
        "on a GPU with `--device cuda`; then export `best/` again. Fine-tune on your own "
        "molecules: `matfuse clm-train my.smi --out ft --init clm`.",
    ]
    for note in notes:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"
