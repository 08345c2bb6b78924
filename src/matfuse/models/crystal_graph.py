"""An end-to-end crystal graph network (CGCNN-style) as a scikit-learn regressor.

The third family of surrogate models in the extrapolation benchmark, next to descriptors +
ML and pretrained-potential embeddings + ML: a network trained from the structure directly
on one property. It follows Xie & Grossman (2018): atoms are nodes with a learned element
embedding, edges join each atom to its nearest neighbours within a cutoff (periodic images
included) with the distance expanded in Gaussians, and gated convolutions

    h_i <- softplus(h_i + norm(sum_j sigmoid(W_f z_ij) * softplus(W_s z_ij))),
    z_ij = [h_i, h_j, rbf(d_ij)]

are followed by mean pooling and an MLP. Written in plain PyTorch (``index_add_`` as the
scatter), so it needs neither torch-geometric nor a GPU; a few minutes per fit on one CPU
core for the ~7,500 five-atom cells of perov_5.

>>> reg = CrystalGraphRegressor(epochs=50).fit(structures, y)  # doctest: +SKIP
>>> reg.predict(new_structures)  # NaN for rows that are not valid crystals  # doctest: +SKIP

As a registered model (``--model crystal-graph``) it runs inside
:class:`~matfuse.pipeline.PropertyModel`, one network per target, and is saved in the
common model-directory format (``matfuse.json``, safetensors weights, ``manifest.json``)::

    PropertyModel(model="crystal-graph", input_type="structure").fit(structures, y)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from torch import nn
from tqdm.auto import tqdm

from matfuse.materials.structures import ParsedStructures, parse_structures
from matfuse.models.threads import torch_threads
from matfuse.progress import stage

MAX_Z = 100


@dataclass
class CrystalGraph:
    """One crystal as a graph: atomic numbers, directed edges (center, neighbour), lengths."""

    numbers: np.ndarray
    centers: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray


def crystal_graph(structure: Any, cutoff: float = 6.0, max_neighbors: int = 12) -> CrystalGraph:
    """Each atom's ``max_neighbors`` nearest neighbours within ``cutoff`` Å, images included."""
    centers, points, _, dists = structure.get_neighbor_list(r=cutoff)
    keep_c, keep_p, keep_d = [], [], []
    for i in range(len(structure)):
        mine = np.flatnonzero(centers == i)
        mine = mine[np.argsort(dists[mine], kind="stable")][:max_neighbors]
        keep_c.append(np.full(mine.size, i))
        keep_p.append(points[mine])
        keep_d.append(dists[mine])
    return CrystalGraph(
        numbers=np.array([min(site.specie.Z, MAX_Z) for site in structure], dtype=np.int64),
        centers=np.concatenate(keep_c).astype(np.int64),
        neighbors=np.concatenate(keep_p).astype(np.int64),
        distances=np.concatenate(keep_d).astype(np.float32),
    )


class _GatedConv(nn.Module):
    def __init__(self, hidden: int, n_rbf: int) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * hidden + n_rbf, hidden)
        self.core = nn.Linear(2 * hidden + n_rbf, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, rbf: torch.Tensor):
        z = torch.cat([h[src], h[dst], rbf], dim=-1)
        msg = torch.sigmoid(self.gate(z)) * nn.functional.softplus(self.core(z))
        agg = torch.zeros_like(h).index_add_(0, src, msg)
        return nn.functional.softplus(h + self.norm(agg))


class CrystalGraphNet(nn.Module):
    """Element embedding → gated graph convolutions → mean pool → MLP → one value."""

    rbf_centers: torch.Tensor  # a buffer (register_buffer), declared for the type checker

    def __init__(
        self, hidden: int = 64, n_conv: int = 3, n_rbf: int = 40, cutoff: float = 6.0
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(MAX_Z + 1, hidden)
        self.convs = nn.ModuleList(_GatedConv(hidden, n_rbf) for _ in range(n_conv))
        self.register_buffer("rbf_centers", torch.linspace(0.0, cutoff, n_rbf))
        self.rbf_gamma = float((n_rbf / cutoff) ** 2)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, 1))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.embed(batch["numbers"])
        d = batch["distances"][:, None] - self.rbf_centers[None, :]
        rbf = torch.exp(-self.rbf_gamma * d**2)
        for conv in self.convs:
            h = conv(h, batch["src"], batch["dst"], rbf)
        n_graphs = int(batch["n_graphs"])
        pooled = torch.zeros(n_graphs, h.shape[1]).index_add_(0, batch["graph"], h)
        pooled = pooled / batch["n_atoms"][:, None]
        return self.head(pooled).squeeze(-1)


def collate_graphs(graphs: list[CrystalGraph]) -> dict[str, torch.Tensor]:
    """Batch graphs into one disconnected graph with a graph index per atom."""
    offset = 0
    numbers, src, dst, dist, graph, n_atoms = [], [], [], [], [], []
    for k, g in enumerate(graphs):
        n = g.numbers.size
        numbers.append(g.numbers)
        src.append(g.centers + offset)
        dst.append(g.neighbors + offset)
        dist.append(g.distances)
        graph.append(np.full(n, k))
        n_atoms.append(n)
        offset += n
    return {
        "numbers": torch.from_numpy(np.concatenate(numbers)),
        "src": torch.from_numpy(np.concatenate(src)),
        "dst": torch.from_numpy(np.concatenate(dst)),
        "distances": torch.from_numpy(np.concatenate(dist)),
        "graph": torch.from_numpy(np.concatenate(graph)),
        "n_atoms": torch.tensor(n_atoms, dtype=torch.float32),
        "n_graphs": torch.tensor(len(graphs)),
    }


class CrystalGraphRegressor(RegressorMixin, BaseEstimator):
    """Train a crystal graph network on one property; inputs are structures of any form.

    Parameters are stored untouched (scikit-learn's contract); learned state ends in ``_``.
    The target is standardised for training. Rows that are not valid crystals are skipped
    in ``fit`` and predicted as NaN, so outputs stay row-aligned. :meth:`featurize` gives the
    graphs once for several fits (one per target); :meth:`state` and :meth:`load_state` are
    what :class:`~matfuse.pipeline.PropertyModel` saves and loads (JSON plus arrays, no
    pickle).
    """

    def __init__(
        self,
        hidden: int = 64,
        n_conv: int = 3,
        cutoff: float = 6.0,
        max_neighbors: int = 12,
        epochs: int = 60,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        random_state: int = 0,
        n_threads: int = 1,
        progress: bool = False,
    ) -> None:
        self.hidden = hidden
        self.n_conv = n_conv
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress

    # -- inputs -------------------------------------------------------------------------
    def featurize(self, X: Any) -> list[CrystalGraph | None]:
        """Graphs of the valid rows of ``X`` (``None`` elsewhere), what ``fit`` and ``predict``
        read; compute them once to fit several targets or folds."""
        if isinstance(X, list | np.ndarray) and all(isinstance(g, CrystalGraph | None) for g in X):
            return list(X)
        if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
            raise ValueError(
                "crystal-graph learns from crystal structures, not from a feature matrix; "
                "give it structures (PropertyModel(model='crystal-graph', "
                "input_type='structure'))"
            )
        parsed = X if isinstance(X, ParsedStructures) else parse_structures(_rows(X))
        return [
            crystal_graph(s, self.cutoff, self.max_neighbors) if s is not None else None
            for s in parsed.structures
        ]

    def _net(self) -> CrystalGraphNet:
        return CrystalGraphNet(self.hidden, self.n_conv, cutoff=self.cutoff)

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> CrystalGraphRegressor:
        graphs = self.featurize(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(graphs) != y.size:
            raise ValueError(f"{len(graphs)} structures for {y.size} targets")
        rows = [i for i, g in enumerate(graphs) if g is not None and np.isfinite(y[i])]
        if len(rows) < 2:
            raise ValueError("fewer than two valid structures with a label")
        self.y_mean_, self.y_std_ = float(y[rows].mean()), float(y[rows].std() or 1.0)
        target = torch.tensor((y[rows] - self.y_mean_) / self.y_std_, dtype=torch.float32)
        train = [graphs[i] for i in rows]
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        net = self._net()
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = self.epochs * int(np.ceil(len(train) / self.batch_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        self.loss_curve_: list[float] = []
        with torch_threads(self.n_threads):
            net.train()
            for epoch in tqdm(range(self.epochs), desc="crystal graph", disable=not self.progress):
                stage("epoch", "crystal graph", epoch, self.epochs)
                order, total = rng.permutation(len(train)), 0.0
                for start in range(0, len(train), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    pred = net(collate_graphs([train[i] for i in idx]))
                    loss = nn.functional.smooth_l1_loss(pred, target[idx], beta=0.5)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += loss.item() * len(idx)
                self.loss_curve_.append(total / len(train))
        self.net_ = net.eval()
        self.n_train_ = len(train)
        return self

    def predict(self, X: Any) -> np.ndarray:
        graphs = self.featurize(X)
        out = np.full(len(graphs), np.nan)
        rows = [i for i, g in enumerate(graphs) if g is not None]
        valid = [g for g in graphs if g is not None]  # the graphs at the indices in `rows`
        with torch_threads(self.n_threads), torch.no_grad():
            for start in range(0, len(rows), 256):
                chunk = rows[start : start + 256]
                pred = self.net_(collate_graphs(valid[start : start + 256])).numpy()
                out[chunk] = pred * self.y_std_ + self.y_mean_
        return out

    # -- persistence --------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as JSON-able values and named float arrays (for safetensors)."""
        config = {
            "y_mean": self.y_mean_,
            "y_std": self.y_std_,
            "n_train": self.n_train_,
            "loss_curve": [float(v) for v in getattr(self, "loss_curve_", [])],
        }
        arrays = {
            k: v.detach().cpu().contiguous().numpy() for k, v in self.net_.state_dict().items()
        }
        return config, arrays

    def load_state(
        self, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> CrystalGraphRegressor:
        """Restore what :meth:`state` returned onto a regressor built with the same params."""
        net = self._net()
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.net_ = net.eval()
        self.y_mean_, self.y_std_ = float(config["y_mean"]), float(config["y_std"])
        self.n_train_ = int(config["n_train"])
        self.loss_curve_ = [float(v) for v in config.get("loss_curve", [])]
        return self


def _rows(X: Any) -> list[Any]:
    if type(X).__name__ in ("Structure", "IStructure", "Atoms"):
        return [X]
    return list(X)
