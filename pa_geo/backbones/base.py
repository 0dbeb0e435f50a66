"""The frozen-backbone interface and its registry: ``get_backbone("esm1b", layers=[21, 33])``."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from pa_geo.errors import ConfigError, StructureError
from pa_geo.io.protein import Protein
from pa_geo.registry import Registry

Layer = int | str
HALF_DTYPES = (torch.float16, torch.bfloat16)
BACKBONES: Registry[type["Backbone"]] = Registry("backbone")


def register_backbone(name: str, overwrite: bool = False) -> Callable[[type["Backbone"]], type["Backbone"]]:
    """Class decorator: make a :class:`Backbone` subclass available to :func:`get_backbone` as ``name``."""
    return BACKBONES.decorator(name, overwrite=overwrite, name_attr="registry_name")


def available_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return BACKBONES.names()


def get_backbone(name: str, **kwargs) -> "Backbone":
    """Instantiate the backbone registered as ``name`` (``kwargs`` go to its constructor, e.g. ``layers=[33]``).

    Raises :class:`~pa_geo.errors.ConfigError` (one line, lists the known names) for an unknown name.
    """
    return BACKBONES.get(name)(**kwargs)


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
    same rows (within floating-point tolerance) as embedding each protein alone. Backbones whose inputs take real
    CPU work (tokens, coordinate features) override :meth:`_prepare_inputs` / :meth:`_embed_prepared` instead, so
    the embed runner can prepare the next batch in a background thread while the model runs (:meth:`prepare`,
    :meth:`run`).

    Move with ``backbone.to(device, dtype)``: float32 / float64 convert the weights; float16 / bfloat16 keep
    float32 weights and run forwards under ``torch.autocast`` in that dtype (fair-esm and ProteinMPNN build some
    tensors in float32 whatever the weights are, so casting the weights themselves breaks them). Backbones with
    ``half_on_cuda`` (the transformers) run under bfloat16 autocast on CUDA unless a dtype was chosen with
    ``.to(dtype=...)`` (``.to(torch.float32)`` keeps full precision); on CPU they run in float32. :meth:`embed`
    always returns float32 CPU tensors.
    """

    registry_name: str = ""
    level: Literal["sequence", "structure"] = "sequence"
    # width D of every layer with the default weights and options, known without loading them (None: build to know)
    width: int | None = None
    half_on_cuda: bool = False
    # padded residues per forward pass the embed runner uses by default, per device type (measured; see
    # benchmarks/embed.py): the key "*" covers device types not listed
    batch_tokens_by_device: dict[str, int] = {"*": 4096}

    @classmethod
    def layer_widths(cls, layers: Sequence[Layer], **options: Any) -> dict[Layer, int]:
        """Width ``D`` of each of ``layers``: what an adapter level of this backbone reads. Known without loading
        weights when the class declares :attr:`width` and no option changes the model; otherwise the backbone is
        built with ``options`` to know."""
        if cls.width is not None and not options:
            return {layer: int(cls.width) for layer in layers}
        return dict(cls(layers=list(layers), **options).dims)

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers: list[Layer] = list(layers)
        self._autocast_dtype: torch.dtype | None = None
        self._dtype_chosen = False

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
    def autocast_dtype(self) -> torch.dtype | None:
        """The half dtype forwards run in: the one chosen with ``.to(dtype=...)``, else bfloat16 (float16 where the
        GPU lacks bfloat16) for ``half_on_cuda`` backbones on CUDA, else None (full precision)."""
        if self._autocast_dtype is not None or self._dtype_chosen:
            return self._autocast_dtype
        if self.half_on_cuda and self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: :attr:`autocast_dtype` when set, else :attr:`weight_dtype`."""
        return self.autocast_dtype or self.weight_dtype

    def default_batch_tokens(self) -> int:
        """The embed runner's default padded-residue budget per forward on this backbone's device."""
        table = self.batch_tokens_by_device
        return int(table.get(self.device.type, table.get("*", 4096)))

    def to(self, *args, **kwargs) -> "Backbone":
        """``nn.Module.to``, except that a half dtype keeps float32 weights and selects autocast in that dtype."""
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is not None:
            self._dtype_chosen = True
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
        """The context every forward pass runs in: autocast in :attr:`autocast_dtype`, else a no-op."""
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        """Embed a batch (non-empty proteins); one dict ``layer -> [L_i, D_layer]`` tensor each. Backbones that
        override :meth:`_embed_prepared` instead need not implement it."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _embed_batch nor _embed_prepared")

    def _prepare_inputs(self, proteins: Sequence[Protein]) -> Any:
        """CPU-side model inputs of a batch (tokens, coordinate features); must not touch the model's weights,
        so it can run in another thread while the model runs. Default: nothing."""
        return None

    def _embed_prepared(self, prepared: "Prepared") -> list[dict[Layer, torch.Tensor]]:
        """Embed a prepared batch; default: :meth:`_embed_batch` on its proteins."""
        return self._embed_batch(prepared.proteins)

    def prepare(self, proteins: Sequence[Protein]) -> "Prepared":
        """Featurise non-empty ``proteins`` on the CPU for :meth:`run` (thread-safe: never calls the model)."""
        proteins = list(proteins)
        return Prepared(proteins, self._prepare_inputs(proteins))

    @torch.no_grad()
    def run(self, prepared: "Prepared") -> list[dict[Layer, torch.Tensor]]:
        """The model on a :meth:`prepare`-d batch: per protein ``{layer: [L, D_layer]}`` float32 CPU tensors."""
        with self.autocast():
            done = self._embed_prepared(prepared)
        return [{layer: t.detach().to("cpu", torch.float32).contiguous() for layer, t in out.items()}
                for out in done]

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
            for i, out in zip(todo, self.run(self.prepare([proteins[i] for i in todo]))):
                outs[i] = out
        return outs


@dataclass
class Prepared:
    """A batch featurised by :meth:`Backbone.prepare`: the (non-empty) ``proteins`` and backbone-specific
    CPU ``inputs`` (None for backbones that featurise inside the forward)."""

    proteins: list[Protein]
    inputs: Any = None
