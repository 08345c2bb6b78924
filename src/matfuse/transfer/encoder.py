"""The ``transfer`` encoder: penultimate activations of source models (frozen transfer).

Each source net of a library (:mod:`matfuse.transfer.library`) maps composition features
to its last hidden layer; this encoder returns that layer for one named source, several
(``sources="expt_gap+phonons"``) or all of them concatenated. It is a pretrained encoder
(no-op ``fit``), so it works with every downstream model and in fusion beside other blocks:

>>> PropertyModel(encoders=["transfer"], input_type="composition")  # doctest: +SKIP
>>> get_encoder("transfer:sources=aflow__Egap").transform(["SiO2"]).shape  # doctest: +SKIP
(1, 64)

The library loads (torch) when the encoder is first used, not when it is registered.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from matfuse.encoders.materials import CompositionEncoder, MaterialEncoder

__all__ = ["TransferEncoder"]


class TransferEncoder(MaterialEncoder):
    """Source-model embeddings of compositions.

    Parameters
    ----------
    sources : ``"all"`` (default), one source name, or names joined by ``+``.
    exclude : sources to leave out (``+``-joined), e.g. the target's own table.
    library : a library directory; ``None`` is the shipped ``transfer-compositions``.
    cache : keep features by formula across calls.
    """

    name: ClassVar[str] = "transfer"
    modality: ClassVar[str] = "composition"
    pretrained: ClassVar[bool] = True
    cache_by_default: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Penultimate activations of source property MLPs (XenonPy-style transfer; "
        "sources=all or a+b)"
    )

    def __init__(
        self,
        sources: str = "all",
        exclude: str = "",
        library: str | None = None,
        cache: bool = True,
    ) -> None:
        self.sources = sources
        self.exclude = exclude
        self.library = library
        self.cache = cache

    def _library(self) -> Any:
        from matfuse.transfer.library import load_library

        lib = load_library(self.library)
        if lib.encoder != CompositionEncoder.name:
            raise ValueError(
                f"the transfer encoder reads composition features; library {lib.path} was "
                f"built on {lib.encoder!r}"
            )
        return lib

    def selected(self) -> list[str]:
        """The source names this encoder concatenates, in library order."""
        return list(self._library().select(self.sources, self.exclude))

    def _widths(self) -> dict[str, int]:
        """Embedding width of each selected source, read without loading the nets."""
        from matfuse.transfer.library import select_sources, source_widths

        widths = source_widths(self.library)
        return {n: widths[n] for n in select_sources(list(widths), self.sources, self.exclude)}

    @property
    def dim(self) -> int:
        return sum(self._widths().values())

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [f"transfer_{n}_{i}" for n, width in self._widths().items() for i in range(width)]
        return np.array(names, dtype=object)

    def _compute(self, objects: list[Any]) -> tuple[np.ndarray, list[str | None]]:
        lib = self._library()
        features, errors = CompositionEncoder()._compute(objects)
        if not objects:
            return np.zeros((0, self.dim), dtype=np.float32), []
        parts = [lib.sources[n].model.embed(features) for n in self.selected()]
        return np.hstack(parts), errors
