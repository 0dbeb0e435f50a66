"""Variable-length attention inside each graph of a PyG batch, with no score matrix kept for long proteins.

Every node of a protein attends to nodes of the same protein only, through ``F.scaled_dot_product_attention``.
Graphs are grouped into length buckets (padding waste <= ``1 - 1/bucket_ratio``) and long proteins run alone,
unpadded; queries are chunked so that no call materialises more than ``chunk_elements`` scores nor, for a long
protein, more than one head's L x L, and each call is gradient-checkpointed, so peak memory stays bounded even on
the math SDPA backend (CPU with attention dropout): scores are never kept for backward. When torch picks a tiled
kernel (flash / memory-efficient / cuDNN), which never holds the score matrix, the protein runs in one call
without chunks or recomputation.

The plan of a batch (:class:`LengthBuckets`: buckets, gather indices, padding masks, the all-valid flags, the
inverse permutation) is built ONCE per forward on the host from ``Batch.ptr`` (one device-to-host copy of B+1
integers) and reused by every level and block, self- and cross-attention alike: :func:`varlen_attention` itself
never reads a tensor value on the host, so on CUDA it queues kernels without synchronising.

Keys may come in G groups (``k, v [G, N, H, dh]``): node i of graph g then attends over the G * L_g keys of its
graph in all groups. Cross-attention over the concatenated nodes of the other levels uses this (the groups are the
other levels; key order does not matter to attention, which has no positional term).

An additive pair bias (:class:`~pa_geo.nn.geometric_bias.GeometricBias`, run by
:func:`~pa_geo.nn.biased_attention.biased_attention`) comes from the geometric map the plan carries per bucket
(:func:`with_geometry`). Graphs up to ``PAIR_CACHE_LENGTH`` long have theirs computed once per forward and run in one
call per layer, which keeps its scores for backward (as many as the map: memory bounded by the length). Longer
graphs compute theirs per query chunk inside the checkpointed chunk function, recomputed in backward, so none of
their L x L tensors outlives a chunk; SDPA has no tiled CPU kernel that gives a bias its gradient, so they always run
in chunks, whose budget counts the bias's intermediates too.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend
from torch.utils.checkpoint import checkpoint

from pa_geo.nn.biased_attention import PairBias, biased_attention
from pa_geo.nn.geometric_bias import GeometricBias, NodeGeometry, PairMap

DEFAULT_CHUNK_ELEMENTS = 1 << 24  # 16.8 M scores = 64 MiB float32 per SDPA call (one 4096-residue head)
SMALL_CALL_ELEMENTS = 1 << 20     # below 1 M scores (4 MiB) a sequence's heads run in one call
PAIR_CACHE_LENGTH = 512           # graphs up to this long get their geometric pair map once per forward


@dataclass(frozen=True)
class PaddedBucket:
    """Several graphs padded to the longest one (b graphs, ``lmax`` rows each).

    index  [b, lmax] node of every padded slot (padding slots repeat the graph's first node)
    rows   [M] flat slot (``g * lmax + i``) of every real node, in bucket order
    mask   [b, 1, 1, lmax] bool key-padding mask (True = attend), None when no slot is padding
    """

    index: Tensor
    rows: Tensor
    mask: Tensor | None


@dataclass(frozen=True)
class LengthBuckets:
    """How :func:`varlen_attention` runs the B graphs of a batch whose nodes are sorted by graph.

    ptr      [B+1] (python ints) node offset of every graph
    buckets  graph indices per bucket; graphs of one bucket are padded to the bucket's longest graph
    singles  (start, end) node range of every one-graph bucket (run unpadded, unmasked)
    padded   one :class:`PaddedBucket` per multi-graph bucket
    inverse  [N] position of every node in the concatenated bucket outputs (singles first, then padded)
    geometry None, or one :class:`NodeGeometry` per single ([1, L]) then per padded bucket ([b, lmax]), for a
             pair bias (:func:`with_geometry`)
    maps     None, or per piece (same order) its shared geometric map [K, b, L, L] (computed once per forward
             for graphs up to ``PAIR_CACHE_LENGTH`` long, None for longer ones)
    pair_map the :class:`PairMap` that computes the maps of longer graphs per query chunk
    """

    ptr: tuple[int, ...]
    buckets: tuple[tuple[int, ...], ...]
    singles: tuple[tuple[int, int], ...] = ()
    padded: tuple[PaddedBucket, ...] = ()
    inverse: Tensor | None = None
    geometry: tuple[NodeGeometry, ...] | None = None
    maps: tuple[Tensor | None, ...] | None = None
    pair_map: PairMap | None = None

    @property
    def num_nodes(self) -> int:
        return self.ptr[-1]


def graph_ptr(batch: object, num_nodes: int) -> list[int]:
    """Node offsets ``[B+1]`` of a PyG ``Batch`` / ``Data`` as python ints: from ``batch.ptr`` when present (PyG
    collation), else from ``batch.batch`` (checked sorted), else one graph. One host read; call it once per forward."""
    ptr = getattr(batch, "ptr", None)
    if isinstance(ptr, Tensor):
        return ptr.tolist()
    index = getattr(batch, "batch", None)
    if not isinstance(index, Tensor):
        return [0, num_nodes]
    return ptr_from_index(index, getattr(batch, "num_graphs", None))


def ptr_from_index(index: Tensor, num_graphs: int | None = None) -> list[int]:
    """``index [N]`` graph id of every node, sorted ascending (PyG ``Batch.batch``) -> offsets ``[B+1]`` (ints)."""
    if index.numel() and bool((index[1:] < index[:-1]).any()):
        raise ValueError("varlen attention needs nodes sorted by graph (PyG Batch order)")
    counts = torch.bincount(index, minlength=num_graphs or 0).tolist()
    ptr = [0]
    for c in counts:
        ptr.append(ptr[-1] + c)
    return ptr


def length_buckets(batch: Tensor | None = None, num_graphs: int | None = None, n_heads: int = 1,
                   chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, bucket_ratio: float = 1.25,
                   ptr: list[int] | tuple[int, ...] | None = None,
                   device: torch.device | None = None) -> LengthBuckets:
    """Group graphs of similar length: within a bucket ``max_len <= bucket_ratio * min_len`` and the padded score
    tensor ``n_graphs * n_heads * max_len**2`` stays within ``chunk_elements`` (a longer graph gets a bucket alone);
    precompute every index the attention calls need.

    Give ``ptr`` ([B+1] python ints, e.g. :func:`graph_ptr`) or ``batch`` ([N] graph index, sorted ascending).
    ``device``: where the index tensors live (default: ``batch``'s device, else CPU).
    """
    if ptr is None:
        if batch is None:
            raise ValueError("length_buckets needs ptr or batch")
        ptr = ptr_from_index(batch, num_graphs)
        device = device or batch.device
    ptr = tuple(int(p) for p in ptr)
    counts = [ptr[g + 1] - ptr[g] for g in range(len(ptr) - 1)]
    buckets: list[list[int]] = []
    min_len = 0
    for length, g in sorted((c, g) for g, c in enumerate(counts) if c > 0):
        if buckets and length <= bucket_ratio * min_len and \
                (len(buckets[-1]) + 1) * n_heads * length * length <= chunk_elements:
            buckets[-1].append(g)
        else:
            buckets.append([g])
            min_len = length
    return _plan(ptr, buckets, device or torch.device("cpu"))


def _plan(ptr: tuple[int, ...], buckets: list[list[int]], device: torch.device) -> LengthBuckets:
    """Host-side index arithmetic, moved to ``device`` once."""
    singles = [(ptr[b[0]], ptr[b[0] + 1]) for b in buckets if len(b) == 1]
    order = [torch.arange(s, e) for s, e in singles]
    padded = []
    for bucket in (b for b in buckets if len(b) > 1):
        starts = torch.tensor([ptr[g] for g in bucket])
        lengths = torch.tensor([ptr[g + 1] - ptr[g] for g in bucket])
        lmax = int(lengths.max())
        pos = torch.arange(lmax)
        valid = pos[None, :] < lengths[:, None]                              # [b, lmax]
        index = torch.where(valid, starts[:, None] + pos[None, :], starts[:, None])
        rows = torch.nonzero(valid.flatten(), as_tuple=True)[0]
        mask = None if bool(valid.all()) else valid[:, None, None, :].to(device)
        padded.append(PaddedBucket(index.to(device), rows.to(device), mask))
        order.append(index.flatten()[rows])
    inverse = None
    if order:
        ids = torch.cat(order)
        inverse = torch.empty_like(ids)
        inverse[ids] = torch.arange(ids.numel())
        inverse = inverse.to(device)
    return LengthBuckets(ptr, tuple(tuple(b) for b in buckets), tuple(singles), tuple(padded), inverse)


def with_geometry(buckets: LengthBuckets, nodes: NodeGeometry, pair_map: PairMap,
                  cache_length: int | None = None) -> LengthBuckets:
    """``buckets`` carrying the geometry of their nodes (``nodes`` fields [N, ...], gathered once per forward into
    the bucket layout) and ``pair_map``, which :func:`varlen_attention` hands to a pair bias. The map of every piece
    of graphs up to ``cache_length`` (default ``PAIR_CACHE_LENGTH``) long is computed here, once for all layers
    (K floats per pair of short graphs); longer graphs get theirs per query chunk, so none of them is stored."""
    cache_length = PAIR_CACHE_LENGTH if cache_length is None else cache_length
    device = nodes.pos.device
    per_bucket = [nodes.take(torch.arange(s, e, device=device)[None]) for s, e in buckets.singles]
    per_bucket += [nodes.take(bucket.index) for bucket in buckets.padded]
    maps = tuple(pair_map.pairs(geo, geo) if geo.index.shape[-1] <= cache_length else None for geo in per_bucket)
    return replace(buckets, geometry=tuple(per_bucket), maps=maps, pair_map=pair_map)


def _sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


_TILED_BACKENDS = (int(SDPBackend.FLASH_ATTENTION), int(SDPBackend.EFFICIENT_ATTENTION),
                   int(SDPBackend.CUDNN_ATTENTION))


def fused_backend_is_tiled(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> bool:
    """True when SDPA would pick a tiled kernel (flash / memory-efficient / cuDNN) that never materialises the
    score matrix, so chunking would only cost time. Uses torch's own backend choice; unknown -> False (chunk)."""
    try:
        return int(torch._fused_sdp_choice(q, k, v, mask, dropout_p)) in _TILED_BACKENDS
    except (AttributeError, RuntimeError, TypeError):
        return False


def chunked_sdpa(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None = None, dropout_p: float = 0.0,
                 chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True,
                 fused_shortcut: bool = True, pair_bias: PairBias | None = None, bias_elements: int = 0,
                 bias_checkpoint: bool = True, bias_groups: int = 1) -> Tensor:
    """Scaled dot-product attention with queries split so that one call holds at most ``chunk_elements`` scores
    and, for a single sequence (B = 1) longer than ``SMALL_CALL_ELEMENTS`` scores, at most one head's Lq x Lk.

    q [B, H, Lq, dh], k / v [B, H, Lk, dh], key_mask [B, 1, 1, Lk] bool (True = attend) or None -> [B, H, Lq, dh].
    With ``use_checkpoint`` and autograd on, every call's forward is recomputed in backward, so across all layers
    the scores of only one call are alive at a time, in forward *and* backward, whichever SDPA backend runs.
    ``fused_shortcut``: when :func:`fused_backend_is_tiled` (e.g. CPU flash attention without dropout), one plain
    call (those kernels hold O(L) memory). ``chunk_elements=None``: no chunking.
    ``pair_bias``: an additive bias computed per chunk (:data:`~pa_geo.nn.biased_attention.PairBias`, over the
    Lk / ``bias_groups`` keys of one key group), holding ``bias_elements`` floats per (query, key) pair, run by
    :func:`~pa_geo.nn.biased_attention.biased_attention`; no fused shortcut then, and the budget counts them.
    ``bias_checkpoint=False``: one call, not recomputed in backward (short graphs: faster, memory bounded by the
    length).
    """
    if pair_bias is None and fused_shortcut and fused_backend_is_tiled(q, k, v, key_mask, dropout_p):
        return _sdpa(q, k, v, key_mask, dropout_p)
    b, h, lq, _ = q.shape
    lk = k.shape[2]
    chunk = lq
    if chunk_elements is not None and (pair_bias is None or bias_checkpoint):
        per_row = b * lk * (h + (bias_elements if pair_bias is not None else 0))
        cap = min(chunk_elements, max(lq * lk, SMALL_CALL_ELEMENTS)) if b == 1 else chunk_elements
        chunk = max(1, cap // per_row)
    grad = use_checkpoint and (pair_bias is None or bias_checkpoint) and torch.is_grad_enabled() and (
        q.requires_grad or k.requires_grad or v.requires_grad or pair_bias is not None)
    outs = []
    for start in range(0, lq, chunk):
        qc = q[:, :, start:start + chunk]
        fn, args = (_sdpa, (qc, k, v, key_mask, dropout_p)) if pair_bias is None else \
            (biased_attention, (qc, k, v, key_mask, dropout_p, pair_bias, start, bias_groups))
        outs.append(checkpoint(fn, *args, use_reentrant=False) if grad else fn(*args))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def varlen_attention(q: Tensor, k: Tensor, v: Tensor, buckets: LengthBuckets, dropout_p: float = 0.0,
                     chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, use_checkpoint: bool = True,
                     fused_shortcut: bool = True, bias: GeometricBias | None = None) -> Tensor:
    """Full attention inside each graph of a batch, no attention across graphs, no host synchronisation.

    q [N, H, dh] (nodes sorted by graph); k, v [N, H, dh] or [G, N, H, dh] (G key groups sharing q's node
    offsets: node i attends over its graph's nodes in every group); buckets from :func:`length_buckets` ->
    [N, H, dh]. A bucket holding one graph runs unpadded and unmasked; a bucket of several graphs is padded to its
    longest graph with a key-padding mask (padded query rows are computed and dropped).
    ``bias``: a layer's :class:`GeometricBias` of the pieces' geometric maps (``buckets.maps``, or per chunk from
    ``buckets.geometry`` and ``buckets.pair_map``, see :func:`with_geometry`), added to the scores of every key
    group (:func:`~pa_geo.nn.biased_attention.biased_attention`).
    """
    if k.dim() == 3:
        k, v = k.unsqueeze(0), v.unsqueeze(0)
    groups, _, heads, dh = k.shape
    if bias is not None and buckets.geometry is None:
        raise ValueError("varlen_attention(bias=...) needs buckets built with geometry (with_geometry)")

    def pair_bias(piece: int) -> dict:
        """chunked_sdpa's bias arguments of a piece: the function, its floats per pair, whether its calls are
        checkpointed (long graphs, whose map is computed per chunk)."""
        if bias is None:
            return {}
        cached, geo, pair_map = buckets.maps[piece], buckets.geometry[piece], buckets.pair_map
        kw = dict(bias_groups=groups)
        if cached is not None:  # whole rows: a slice would cost a zero-filled map per layer in backward
            full = slice(0, cached.shape[2])
            return dict(pair_bias=lambda rows: bias(cached if rows == full else cached[:, :, rows]),
                        bias_elements=2 * bias.n_heads, bias_checkpoint=False, **kw)
        return dict(pair_bias=lambda rows: bias.pairs(pair_map, geo.rows(rows), geo),
                    bias_elements=pair_map.elements_per_pair + 2 * bias.n_heads, **kw)

    pieces: list[Tensor] = []
    for s, e in buckets.singles:
        qb = q[s:e].transpose(0, 1).unsqueeze(0)                                    # [1, H, L, dh]
        kb, vb = (t[:, s:e].reshape(-1, heads, dh).transpose(0, 1).unsqueeze(0) for t in (k, v))  # [1, H, G*L, dh]
        out = chunked_sdpa(qb, kb, vb, None, dropout_p, chunk_elements, use_checkpoint, fused_shortcut,
                           **pair_bias(len(pieces)))
        pieces.append(out[0].transpose(0, 1))
    for bucket in buckets.padded:
        b, lmax = bucket.index.shape
        qb = q[bucket.index].permute(0, 2, 1, 3)                                     # [b, H, lmax, dh]
        kb, vb = (t[:, bucket.index].permute(1, 3, 0, 2, 4).reshape(b, heads, groups * lmax, dh) for t in (k, v))
        mask = bucket.mask
        if mask is not None and groups > 1:
            mask = mask.expand(b, 1, 1, lmax).repeat(1, 1, 1, groups)
        out = chunked_sdpa(qb, kb, vb, mask, dropout_p, chunk_elements, use_checkpoint, fused_shortcut,
                           **pair_bias(len(pieces)))
        pieces.append(out.permute(0, 2, 1, 3).reshape(b * lmax, heads, dh)[bucket.rows])
    if not pieces:
        return q.new_zeros(q.shape)
    return torch.cat(pieces)[buckets.inverse]
