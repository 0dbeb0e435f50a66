"""The frozen-backbone interface and its registry: ``get_backbone("esm1b", layers=[21, 33])``."""
from __future__ import annotations

import abc
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from pa_geo.errors import ConfigError, StructureError
from pa_geo.io.protein import Protein

Layer = int | str
HALF_DTYPES = (torch.float16, torch.bfloat16)
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
    """Instantiate the backbone registered as ``name`` (``kwargs`` go to its constructor, e.g. ``layers=[33]``).

    Raises :class:`~pa_geo.errors.ConfigError` (one line, lists the known names) for an unknown name.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(available_backbones())}")
    return _REGISTRY[name](**kwargs)


def resolve_layers(name: str, layers: Sequence[int] | int | str | None, available: Sequence[int],
                   default: int) -> list[int]:
    """Normalise a layer request to sorted unique ints from ``available``.

    ``None`` -> ``[default]``; ``"all"`` -> every available layer; negative ints count from the end of
    ``available`` (``-1`` = last). Anything else raises :class:`ConfigError` naming the valid range.
    """
    avail = list(available)
    if layers is None:
        return [default]
    if isinstance(layers, str):
        if layers != "all":
            raise ConfigError(f"{name}: layers must be a list of ints or 'all', got {layers!r}")
        return avail
    req = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    out = []
    for layer in req:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise ConfigError(f"{name}: layer {layer!r} is not an int; valid layers {avail[0]}..{avail[-1]}")
        layer = int(layer)
        if layer < 0 and -layer <= len(avail):
            layer = avail[layer]
        if layer not in avail:
            raise ConfigError(f"{name}: layer {layer} out of range; valid layers {avail[0]}..{avail[-1]}")
        out.append(layer)
    if not out:
        raise ConfigError(f"{name}: empty layer list")
    return sorted(set(out))


def chain_segments(protein: Protein) -> list[np.ndarray]:
    """Residue indices ``[L_c]`` (int64, file order) of each chain of ``protein``, in chain order."""
    ids = np.asarray(protein.chain_ids)
    return [np.flatnonzero(ids == c) for c in protein.chains]


def chain_jobs(proteins: Sequence[Protein]) -> list[tuple[int, np.ndarray, str]]:
    """``(protein index, residue indices [L_c], chain sequence)`` for every chain of every protein, in order: the
    unit per-chain backbones embed."""
    return [(pi, idx, "".join(p.sequence[i] for i in idx))
            for pi, p in enumerate(proteins) for idx in chain_segments(p)]


class Backbone(torch.nn.Module, abc.ABC):
    """A frozen per-residue encoder. Always in ``eval()`` mode, never tracks gradients.

    Subclasses set ``level``, ``layers`` and implement :meth:`dims`, :meth:`fingerprint` and :meth:`_embed_batch`.
    ``_embed_batch`` runs the whole list through ONE padded forward pass where the model allows it, and gives the
    same rows (within floating-point tolerance) as embedding each protein alone. Move with
    ``backbone.to(device, dtype)``: float32 / float64 convert the weights; float16 / bfloat16 keep float32 weights
    and run forwards under ``torch.autocast`` in that dtype (fair-esm and ProteinMPNN build some tensors in
    float32 whatever the weights are, so casting the weights themselves breaks them). :meth:`embed` always
    returns float32 CPU tensors.
    """

    registry_name: str = ""
    level: Literal["sequence", "structure"] = "sequence"

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers: list[Layer] = list(layers)
        self._autocast_dtype: torch.dtype | None = None

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

    @property
    def device(self) -> torch.device:
        """Device of the weights (CPU for weight-free backbones)."""
        t = next(iter(self.parameters()), None)
        if t is None:
            t = next(iter(self.buffers()), None)
        return t.device if t is not None else torch.device("cpu")

    @property
    def weight_dtype(self) -> torch.dtype:
        """Floating dtype of the weights (float32 for weight-free backbones); inputs are cast to it."""
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.float32

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: the autocast dtype after ``.to(dtype=float16 / bfloat16)``, else :attr:`weight_dtype`."""
        return self._autocast_dtype or self.weight_dtype

    def to(self, *args, **kwargs) -> "Backbone":
        """``nn.Module.to``, except that a half dtype keeps float32 weights and selects autocast in that dtype."""
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype in HALF_DTYPES:
            self._autocast_dtype = dtype
            dtype = torch.float32
        elif dtype is not None:
            self._autocast_dtype = None
        return super().to(device=device, dtype=dtype, non_blocking=non_blocking)

    def half(self) -> "Backbone":
        return self.to(dtype=torch.float16)

    def bfloat16(self) -> "Backbone":
        return self.to(dtype=torch.bfloat16)

    def autocast(self) -> torch.autocast:
        """The context every forward pass runs in: autocast in the half dtype chosen by :meth:`to`, else a no-op."""
        return torch.autocast(self.device.type, dtype=self._autocast_dtype or torch.bfloat16,
                              enabled=self._autocast_dtype is not None)

    @abc.abstractmethod
    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        """Embed a batch (non-empty proteins); one dict ``layer -> [L_i, D_layer]`` float32 CPU tensor each."""

    def _assemble_chains(self, proteins: Sequence[Protein], jobs: Sequence[tuple],
                         rows: Callable[[int, Layer], torch.Tensor]) -> list[dict[Layer, torch.Tensor]]:
        """Per protein ``{layer: [L, D_layer]}`` float32 CPU, filled chain by chain: ``jobs[j]`` starts with
        ``(protein index, residue indices [L_c])`` and ``rows(j, layer)`` gives that chain's ``[L_c, D_layer]``."""
        outs = [{layer: torch.empty(len(p), self.dims[layer]) for layer in self.layers} for p in proteins]
        for j, (pi, idx, *_) in enumerate(jobs):
            for layer in self.layers:
                outs[pi][layer][torch.from_numpy(idx)] = rows(j, layer).float().cpu()
        return outs

    def max_residues(self) -> int | None:
        """Longest chain one forward pass takes (None = unlimited); longer chains are windowed by the backbone."""
        return None

    def train(self, mode: bool = True) -> "Backbone":  # frozen: stays in eval whatever the caller asks
        return super().train(False)

    @torch.no_grad()
    def embed(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        """Per-residue embeddings: for each protein a dict ``layer -> Tensor [L, D_layer]`` (float32, CPU).

        Raises :class:`~pa_geo.errors.StructureError` when a structure backbone gets a sequence-only protein.
        """
        proteins = list(proteins)
        if self.level == "structure":
            missing = [p for p in proteins if not p.has_structure]
            if missing:
                p = missing[0]
                raise StructureError(p.source or p.id, f"{self.registry_name} needs coordinates; sequence-only "
                                     f"input: {', '.join(q.id for q in missing)}")
        todo = [i for i, p in enumerate(proteins) if len(p)]
        outs: list[dict[Layer, torch.Tensor]] = [
            {layer: torch.zeros(0, d) for layer, d in self.dims.items()} for _ in proteins]
        if todo:
            with self.autocast():
                done = self._embed_batch([proteins[i] for i in todo])
            for i, out in zip(todo, done):
                outs[i] = {layer: t.detach().to("cpu", torch.float32).contiguous() for layer, t in out.items()}
        return outs
