"""The frozen-backbone interface and its registry: ``get_backbone("esm1b", layers=[21, 33])``."""
from __future__ import annotations

import abc
from typing import Callable, Literal, Sequence

import torch

from pa_geo.errors import ConfigError
from pa_geo.io.protein import Protein

Layer = int | str
_REGISTRY: dict[str, type["Backbone"]] = {}


def register_backbone(name: str) -> Callable[[type["Backbone"]], type["Backbone"]]:
    """Class decorator: make a :class:`Backbone` subclass available to :func:`get_backbone` as ``name``."""

    def deco(cls: type["Backbone"]) -> type["Backbone"]:
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return deco


def available_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_REGISTRY)


def get_backbone(name: str, **kwargs) -> "Backbone":
    """Instantiate the backbone registered as ``name`` (``kwargs`` go to its constructor).

    Raises :class:`~pa_geo.errors.ConfigError` (one line, lists the known names) for an unknown name.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(available_backbones())}")
    return _REGISTRY[name](**kwargs)


class Backbone(torch.nn.Module, abc.ABC):
    """A frozen per-residue encoder. Always in ``eval()`` mode, never tracks gradients.

    Subclasses set ``level``, ``layers`` and implement :meth:`dims`, :meth:`fingerprint` and :meth:`_embed_batch`.
    """

    registry_name: str = ""
    level: Literal["sequence", "structure"] = "sequence"

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers: list[Layer] = list(layers)

    @property
    @abc.abstractmethod
    def dims(self) -> dict[Layer, int]:
        """Output dimension ``D`` per selected layer."""

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Short hex digest identifying the weights (a cache key component; changes when the weights do)."""

    @property
    def id(self) -> str:
        """``<registry name>-<fingerprint>``: identifies these weights in cache keys."""
        return f"{self.registry_name}-{self.fingerprint}"

    @abc.abstractmethod
    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        """Embed a batch; one dict ``layer -> [L_i, D_layer]`` float32 CPU tensor per protein."""

    def max_residues(self) -> int | None:
        """Longest chain one forward pass takes (None = unlimited); longer chains are windowed by the backbone."""
        return None

    def train(self, mode: bool = True) -> "Backbone":  # frozen: stays in eval whatever the caller asks
        return super().train(False)

    @torch.no_grad()
    def embed(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        """Per-residue embeddings: for each protein a dict ``layer -> Tensor [L, D_layer]`` (float32, CPU)."""
        if self.level == "structure":
            missing = [p.id for p in proteins if not p.has_structure]
            if missing:
                raise ValueError(f"{self.registry_name} needs coordinates; sequence-only input: {', '.join(missing)}")
        return self._embed_batch(list(proteins))
