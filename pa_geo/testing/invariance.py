"""Batch independence and rigid-motion invariance of a model's outputs (see :mod:`pa_geo.testing`).

>>> import torch
>>> from torch_geometric.data import Data
>>> from pa_geo.nn import ProteinAdapter
>>> from pa_geo.testing import assert_batch_independent, assert_rigid_motion_invariant
>>> _ = torch.manual_seed(0)
>>> graphs = [Data(emb_a=torch.randn(n, 8), pos=torch.randn(n, 3), num_nodes=n) for n in (5, 9, 7)]
>>> adapter = ProteinAdapter({"emb_a": 8}, d_model=16, n_heads=2)
>>> assert_batch_independent(adapter, graphs)
>>> assert_rigid_motion_invariant(adapter, graphs)
>>> leaky = lambda batch: batch.emb_a - batch.emb_a.mean(0)  # centres over the whole batch
>>> assert_batch_independent(leaky, graphs)
Traceback (most recent call last):
...
AssertionError: output 'out' of graph 0 differs alone and in a batch of 3 by up to ...
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from pa_geo.nn.outputs import EncoderOutput

# coordinate fields of pa_geo's graphs (pa_geo.graphs.schema) that move with the protein
COORDINATE_FIELDS = ("pos", "backbone")


def _outputs(out: Any) -> dict[str, Tensor]:
    """An encoder's floating outputs by name (``graph``, ``node``), or ``{"out": tensor}``."""
    if isinstance(out, EncoderOutput):
        return {"graph": out.graph, "node": out.node}
    if isinstance(out, Tensor):
        return {"out": out}
    raise TypeError(f"the model returned a {type(out).__name__}; expected an EncoderOutput or a Tensor")


@contextlib.contextmanager
def _evaluating(model: Callable[[Batch], Any]) -> Iterator[None]:
    training = getattr(model, "training", None)
    if training is not None:
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if training:
            model.train()


def _rows(value: Tensor, batch: Batch, index: int) -> Tensor:
    """Graph ``index``'s rows of a node-level ``[N, ...]`` or graph-level ``[B, ...]`` output."""
    if value.shape[0] == batch.num_nodes:
        return value[int(batch.ptr[index]):int(batch.ptr[index + 1])]
    if value.shape[0] == batch.num_graphs:
        return value[index:index + 1]
    raise AssertionError(f"an output has {value.shape[0]} rows: neither the batch's {batch.num_nodes} nodes nor its "
                         f"{batch.num_graphs} graphs")


def _compare(name: str, expected: Tensor, got: Tensor, what: str, atol: float, rtol: float) -> None:
    if expected.shape != got.shape:
        raise AssertionError(f"output {name!r} {what}: shape {tuple(got.shape)} instead of {tuple(expected.shape)}")
    if not torch.allclose(got, expected, atol=atol, rtol=rtol):
        worst = float((got - expected).abs().max())
        raise AssertionError(f"output {name!r} {what} by up to {worst:.3g} (atol {atol}, rtol {rtol})")


def assert_batch_independent(model: Callable[[Batch], Any], graphs: Sequence[Data], atol: float = 1e-5,
                             rtol: float = 1e-4) -> None:
    """Assert that each of ``graphs`` gets the same outputs from ``model`` alone as inside one batch of all of them.

    Args:
        model: batch -> :class:`EncoderOutput` or ``Tensor`` (node rows ``[N, D]`` or graph rows ``[B, D]``).
        graphs: two or more graphs (PyG ``Data``) with the fields the model reads.
        atol, rtol: tolerances of ``torch.allclose`` (summation order differs with the batch).
    Raises:
        AssertionError: naming the output, the graph and the largest difference.
    """
    if len(graphs) < 2:
        raise ValueError("assert_batch_independent needs at least two graphs")
    together = Batch.from_data_list(list(graphs))
    with _evaluating(model):
        batched = _outputs(model(together))
        for i, graph in enumerate(graphs):
            alone = Batch.from_data_list([graph])
            for name, value in _outputs(model(alone)).items():
                _compare(name, _rows(value, alone, 0), _rows(batched[name], together, i),
                         f"of graph {i} differs alone and in a batch of {len(graphs)}", atol, rtol)


def random_rotation(generator: torch.Generator | None = None) -> Tensor:
    """A uniformly random proper rotation matrix ``[3, 3]`` (QR of a Gaussian matrix, det +1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.float()


def _moved(batch: Batch, rotation: Tensor, translation: Tensor) -> Batch:
    out = batch.clone()
    for key in COORDINATE_FIELDS:
        value = batch.get(key) if hasattr(batch, "get") else getattr(batch, key, None)
        if isinstance(value, Tensor) and value.is_floating_point() and value.shape[-1] == 3:
            out[key] = value @ rotation.to(value.dtype).T + translation.to(value.dtype)
    return out


def assert_rigid_motion_invariant(model: Callable[[Batch], Any], graphs: Sequence[Data] | Batch,
                                  rotation: Tensor | None = None, translation: Tensor | None = None,
                                  atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Assert that rotating and translating every coordinate field (``pos``, ``backbone``) leaves the
    outputs of ``model`` unchanged.

    Args:
        model: batch -> :class:`EncoderOutput` or ``Tensor``.
        graphs: the graphs (or a batch of them).
        rotation: ``[3, 3]`` rotation (default: :func:`random_rotation`, seeded); translation: ``[3]`` (default:
            a shift of tens of Angstrom, seeded).
        atol, rtol: tolerances of ``torch.allclose``.
    Raises:
        AssertionError: naming the output and the largest difference; ``ValueError`` when the graphs carry no
        coordinates.
    """
    batch = graphs if isinstance(graphs, Batch) else Batch.from_data_list(list(graphs))
    if not any(isinstance(getattr(batch, k, None), Tensor) for k in COORDINATE_FIELDS):
        raise ValueError(f"the graphs have no coordinate field ({', '.join(COORDINATE_FIELDS)}) to move")
    g = torch.Generator().manual_seed(0)
    rotation = random_rotation(g) if rotation is None else rotation
    translation = torch.randn(3, generator=g) * 20 if translation is None else translation
    with _evaluating(model):
        before = _outputs(model(batch))
        after = _outputs(model(_moved(batch, rotation, translation)))
    for name, value in before.items():
        _compare(name, value, after[name], "changes under a rotation and translation", atol, rtol)
