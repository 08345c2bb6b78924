"""The pretraining loop: checkpoints, exact resume, held-out evaluation, export.

``pretrain(...)`` is what ``matfuse pretrain`` runs. The output directory holds
``run.json`` (the full configuration and command), ``metrics.jsonl`` (one line per log or
evaluation event), ``checkpoint/`` (latest training state) and, at the end, ``model/`` — a
model directory ready to ship (see :mod:`matfuse.foundation.model_dir`). Running the same
command again on an interrupted output directory resumes from the checkpoint on the same
data order with the same optimiser and RNG state, so the result matches an uninterrupted
run.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from matfuse.foundation.autoencoder import ModelConfig, MoleculeAutoencoder
from matfuse.foundation.examples import make_examples
from matfuse.foundation.inference import encode_examples, reconstruction_metrics
from matfuse.foundation.model_dir import (
    LoadedModel,
    load_model_dir,
    save_model_dir,
    weights_identity,
)
from matfuse.foundation.tokenizers import Tokenizer, make_tokenizer
from matfuse.inputs.writers import write_text
from matfuse.pretrain.checkpoint import load_training_state, save_training_state
from matfuse.pretrain.data import (
    CorpusStream,
    StreamPosition,
    heldout_description,
    read_corpus,
)
from matfuse.pretrain.schedule import ScheduleConfig, append_jsonl, learning_rate, resumed_config

#: Architectures of the four model families, as ``matfuse pretrain MODEL`` names them.
MODEL_PRESETS: dict[str, dict] = {
    "smi-ted": {"encoder": "ted", "language": "smiles"},
    "selfies-ted": {"encoder": "ted", "language": "selfies"},
    "smi-ssed": {"encoder": "ssed", "language": "smiles"},
    "graph-ged": {"encoder": "ged", "language": "selfies"},
}


@dataclass
class TrainConfig(ScheduleConfig):
    """Optimisation and bookkeeping settings of one pretraining run."""

    steps: int = 20_000
    warmup: int = 500
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    mask_prob: float = 0.1
    mask_weight: float = 0.2
    latent_noise: float = 0.05
    checkpoint_every: int = 500
    eval_every: int = 1000
    log_every: int = 50
    n_heldout: int = 1000
    eval_size: int = 500
    chunk_size: int = 20_000
    vocab_rows: int = 200_000
    latent_stats_rows: int = 20_000
    #: "shuffled" (rows permuted across the corpus every epoch, held-out rows a random
    #: sample) or "file" (file order; runs saved before this option existed)
    stream_order: str = "shuffled"
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    max_minutes: float | None = None
    #: stop (checkpoint and export) at this step without changing the schedule, e.g. to
    #: split a long run across jobs; rerunning without it continues to ``steps``
    stop_at: int | None = None
    extra: dict = field(default_factory=dict)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _hardware(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"


def pretrain(
    name: str,
    corpus: str | Path,
    out: str | Path,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    command: str = "",
    progress: bool = True,
    resume_lr: float | None = None,
    init_from: str | Path | None = None,
) -> Path:
    """Train (or resume training) a foundation model; returns the exported model directory.

    ``init_from`` starts a new run from an exported model directory (a shipped checkpoint
    such as ``matfuse/weights/selfies-ted`` or another run's ``model/``) instead of random
    weights: its architecture and vocabulary are kept, so the result stays compatible with
    everything that reads the original, and only the corpus and schedule are new. That is how
    a user continues our CPU-scale pretraining on a GPU or adapts it to their own chemistry.
    Tokens of the new corpus that are not in the vocabulary read as ``<unk>``.

    ``resume_lr`` replaces the saved peak learning rate of a resumed run (and is saved for later
    resumes): extending a finished cosine schedule with the original peak restarts it high and
    undoes part of the convergence, so a lower peak gives a gentle restart instead.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_file, ckpt = out / "run.json", out / "checkpoint"
    start: LoadedModel | None = None  # the model ``init_from`` names, once loaded
    if run_file.exists():  # resuming: the saved configuration wins
        run = json.loads(run_file.read_text())
        model_cfg = ModelConfig(**run["model"])
        # a resumed run may be extended or given more time
        saved_train = resumed_config(
            TrainConfig, run["train"], train_cfg, ("steps", "max_minutes", "stop_at")
        )
        if resume_lr is not None and resume_lr != saved_train.lr:
            saved_train.lr = resume_lr
            run["train"]["lr"] = resume_lr
            write_text(json.dumps(run, indent=2), run_file)
        train_cfg = saved_train
        if command and command not in run["command"]:
            # the model card must say exactly how the weights came about
            run["command"] += f"\n{command}   # resumed"
            write_text(json.dumps(run, indent=2), run_file)
        tokenizer = Tokenizer.from_dict(run["tokenizer"])
    else:
        train_cfg = train_cfg or TrainConfig()
        if init_from is not None:
            start = load_model_dir(init_from)
            model_cfg, tokenizer = start.config, start.tokenizer
            preset = MODEL_PRESETS.get(name, {})
            if any(getattr(model_cfg, k) != v for k, v in preset.items()):
                raise ValueError(
                    f"{init_from} holds a {model_cfg.encoder}/{model_cfg.language} model, "
                    f"not a {name} ({preset['encoder']}/{preset['language']})"
                )
        else:
            if model_cfg is None:
                model_cfg = ModelConfig(**MODEL_PRESETS.get(name, {}))
            tokenizer = make_tokenizer(model_cfg.language).fit(
                read_corpus(corpus, limit=train_cfg.vocab_rows)
            )
        run = {
            "name": name,
            "corpus": str(corpus),
            "command": command,
            "model": model_cfg.to_dict(),
            "train": asdict(train_cfg),
            "tokenizer": tokenizer.to_dict(),
        }
        if init_from is not None:
            run["init_from"] = {"path": str(init_from), **weights_identity(init_from)}
        write_text(json.dumps(run, indent=2), run_file)

    device = resolve_device(train_cfg.device)
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    graph = model_cfg.encoder == "ged"
    model = MoleculeAutoencoder(model_cfg, len(tokenizer)).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
    )
    stream = CorpusStream(
        corpus,
        tokenizer,
        train_cfg.batch_size,
        model_cfg.max_len,
        graph=graph,
        chunk_size=train_cfg.chunk_size,
        n_heldout=train_cfg.n_heldout,
        seed=train_cfg.seed,
        order="file" if train_cfg.stream_order == "file" else "shuffled",
    )
    heldout = make_examples(stream.heldout(), tokenizer, model_cfg.max_len, graph)[
        : train_cfg.eval_size
    ]
    step, position, elapsed = 0, StreamPosition(), 0.0
    # sums of the metrics over the steps of the current logging window, checkpointed with
    # the weights so that a window interrupted by a resume is logged exactly
    running: dict[str, float] = {}
    if (ckpt / "state.json").exists():
        state = load_training_state(ckpt, model, optimizer, device)
        step, elapsed = state["step"], state["elapsed_s"]
        position = StreamPosition(**state["position"])
        running = {k: float(v) for k, v in state.get("running", {}).items()}
    elif "init_from" in run:  # no checkpoint yet: start from the given model's weights
        start = start or load_model_dir(run["init_from"]["path"])
        model.load_state_dict(start.model.state_dict())
    metrics_file = out / "metrics.jsonl"
    bar = tqdm(total=train_cfg.steps, initial=step, disable=not progress, desc=name)
    started = time.perf_counter() - elapsed
    deadline = None if train_cfg.max_minutes is None else train_cfg.max_minutes * 60

    def checkpoint() -> None:
        save_training_state(
            ckpt,
            model,
            optimizer,
            {
                "step": step,
                "elapsed_s": time.perf_counter() - started,
                "position": asdict(position),
                "running": dict(running),
            },
        )

    batches = stream(position)
    last = min(train_cfg.steps, train_cfg.stop_at or train_cfg.steps)
    while step < last:
        if deadline is not None and time.perf_counter() - started > deadline:
            break
        position, batch = next(batches)
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, train_cfg)
        out_loss = model.loss(
            batch.to(device),
            mask_prob=train_cfg.mask_prob,
            mask_weight=train_cfg.mask_weight,
            latent_noise=train_cfg.latent_noise,
        )
        optimizer.zero_grad(set_to_none=True)
        out_loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        optimizer.step()
        step += 1
        for k, v in out_loss.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        bar.update(1)
        if step % train_cfg.log_every == 0:
            # every step of the window is in ``running``, including those before a resume
            avg = {k: v / train_cfg.log_every for k, v in running.items()}
            running = {}
            bar.set_postfix(loss=f"{avg['loss']:.3f}", acc=f"{avg['token_acc']:.3f}")
            append_jsonl(
                metrics_file,
                {
                    "step": step,
                    "event": "train",
                    "lr": learning_rate(step, train_cfg),
                    "elapsed_s": time.perf_counter() - started,
                    **avg,
                },
            )
        if step % train_cfg.eval_every == 0 or step == train_cfg.steps:
            metrics = reconstruction_metrics(model, tokenizer, heldout)
            append_jsonl(
                metrics_file,
                {
                    "step": step,
                    "event": "heldout",
                    "elapsed_s": time.perf_counter() - started,
                    **metrics,
                },
            )
        if step % train_cfg.checkpoint_every == 0:
            checkpoint()
    bar.close()
    checkpoint()
    return export(
        name,
        out,
        model,
        tokenizer,
        stream,
        train_cfg,
        step,
        time.perf_counter() - started,
        device,
        heldout,
    )


def export(
    name: str,
    out: Path,
    model: MoleculeAutoencoder,
    tokenizer: Tokenizer,
    stream: CorpusStream,
    train_cfg: TrainConfig,
    step: int,
    wall_s: float,
    device: str,
    heldout: list,
) -> Path:
    """Fit the aggregate-posterior Gaussian and write ``out/model`` with its model card."""
    rows: list = []
    for chunk in stream.chunks():
        rows += make_examples(chunk, tokenizer, model.cfg.max_len, model.cfg.encoder == "ged")
        if len(rows) >= train_cfg.latent_stats_rows:
            break
    Z = encode_examples(model, rows[: train_cfg.latent_stats_rows])
    mean = Z.mean(0)
    cov = np.cov(Z, rowvar=False) + 1e-5 * np.eye(Z.shape[1])
    run_record = json.loads((out / "run.json").read_text())
    chol = np.linalg.cholesky(cov)
    metrics = reconstruction_metrics(model, tokenizer, heldout)
    meta = {
        "corpus": stream.path.name,
        "steps": step,
        "batch_size": train_cfg.batch_size,
        "molecules_seen": step * train_cfg.batch_size,
        "wall_time_s": round(wall_s, 1),
        "hardware": _hardware(device),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "heldout_metrics": metrics,
        "command": run_record.get("command", ""),
        "train": asdict(train_cfg),
    }
    if "init_from" in run_record:
        meta["init_from"] = run_record["init_from"]
    target = save_model_dir(
        out / "model", name, model, tokenizer, torch.from_numpy(mean), torch.from_numpy(chol), meta
    )
    write_text(model_card(name, model.cfg.to_dict(), meta), target / "MODEL_CARD.md")
    return target


def model_card(name: str, arch: dict, meta: dict, extra_metrics: dict | None = None) -> str:
    """A short human-readable card: what the model is, what it saw, how good, how to redo it."""
    source = "molecular graphs" if arch["encoder"] == "ged" else arch["language"].upper()
    lines = [
        f"# {name}",
        "",
        f"matfuse foundation model: `{arch['encoder']}` encoder over {source}, transformer "
        f"decoder to {arch['language'].upper()}, latent dimension {arch['latent_dim']}.",
        "",
        "## Training",
        f"- corpus: {meta['corpus']} ({heldout_description(meta['train'])} held out)",
        f"- steps: {meta['steps']} × batch {meta['batch_size']} = "
        f"{meta['molecules_seen']:,} molecules seen",
        f"- wall time: {meta['wall_time_s'] / 60:.1f} min on {meta['hardware']}",
        *(
            [
                f"- initialised from: `{meta['init_from']['path']}` "
                f"({meta['init_from']['steps']} steps, sha256 {meta['init_from']['sha256']})"
            ]
            if meta.get("init_from")
            else []
        ),
        f"- parameters: {meta['n_parameters']:,}",
        f"- architecture: `{json.dumps(arch)}`",
        "",
        "## Held-out metrics (greedy decoding, corpus hold-out slice)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for k, v in meta["heldout_metrics"].items():
        lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    if extra_metrics:
        lines += [
            "",
            "## Benchmark (benchmarks/foundation_models.py)",
            "",
            "```json",
            json.dumps(extra_metrics, indent=2),
            "```",
        ]
    lines += [
        "",
        "## Reproduce",
        "",
        "```bash",
        meta["command"] or "(command not recorded)",
        "```",
        "",
    ]
    return "\n".join(lines)
