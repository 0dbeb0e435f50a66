"""Batching by a node budget: pack graphs of similar size into batches of at most ``budget`` nodes."""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from torch.utils.data import BatchSampler, DistributedSampler, Sampler

from pa_geo.batching import pack_by_budget


class EpochHolder:
    """Where Lightning's ``set_epoch`` lands when no distributed sampler is given: Lightning calls ``set_epoch`` on
    ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler``, never on the batch sampler itself."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch."""
        self.epoch = int(epoch)


class NodeBudgetBatchSampler(BatchSampler):
    """Batches of dataset indices whose node counts sum to at most ``budget`` (a larger graph goes alone).

    Training (``shuffle=True``): indices are shuffled, cut into buckets of ``bucket_size`` examples, each bucket is
    sorted by size and packed greedily, and the batch order is shuffled, so batches hold graphs of similar size
    (little padding waste in attention / pooling) yet differ between epochs (seed + epoch). Every epoch has the
    same number of batches, ``len(self)`` (epoch 0's count): another epoch's packing is evened out by splitting its
    largest batches or merging its two smallest while they fit the budget (:meth:`_even_out`). Lightning reads
    ``len`` once per fit and validates after that many batches, so an epoch with fewer batches would skip its
    validation and one with more would validate before its end.
    Evaluation (``shuffle=False``): all indices sorted by size, then packed; deterministic.

    Distributed: Lightning injects a ``DistributedSampler`` through ``sampler``; only its ``num_replicas`` / ``rank``
    are used. Every rank builds the same global batch list and takes batches ``rank::num_replicas``; unless the
    sampler is Lightning's unrepeated (predict) sampler, the list is padded by repeating batches so that every rank
    runs the same number of steps (uneven step counts deadlock DDP's gradient all-reduce).

    Args:
        sizes: node count of every example (both graphs for pair tasks), ``[num_examples]``.
        budget: maximum nodes per batch.
        shuffle: training order (see above).
        seed: base seed of the shuffles; epoch ``e`` uses ``seed + e``.
        bucket_size: examples per length-sorted bucket when shuffling.
        sampler: a ``DistributedSampler`` (Lightning's hook) gives ``num_replicas`` / ``rank`` and the epoch (Lightning
            sets it on ``batch_sampler.sampler``); None = an :class:`EpochHolder` Lightning sets the epoch on.
        drop_last: accepted for Lightning's batch-sampler protocol; batches are never dropped.
        with_epoch: yield ``(index, epoch)`` pairs instead of indices, so a dataset read in a worker process knows
            the epoch (``StoredDataset`` passes it to the task kind's epoch hook, e.g. ATOM3D PPI's pair draws).

    Resuming inside an epoch: :meth:`skip_next` makes the next pass start after the batches a checkpoint had already
    trained on (``pa_geo.train.resume.ResumeState`` sets it), so the rest of the epoch is what the uninterrupted run
    saw; ``len`` stays the whole epoch's count, as Lightning expects.
    """

    def __init__(self, sizes: Sequence[int], budget: int, shuffle: bool = False, seed: int = 0,
                 bucket_size: int = 256, sampler: Sampler | None = None, drop_last: bool = False,
                 with_epoch: bool = False) -> None:
        if budget < 1:
            raise ValueError(f"node budget must be >= 1, got {budget}")
        self.sizes = [int(s) for s in sizes]
        self.budget = int(budget)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.bucket_size = max(1, int(bucket_size))
        self.sampler = sampler if sampler is not None else EpochHolder()
        self.drop_last = drop_last
        self.with_epoch = bool(with_epoch)
        self.batch_size = None  # no fixed batch size; Lightning's protocol looks for the attribute
        self._epoch = 0
        self._skip = 0
        self._count: int | None = None  # batches per training epoch (epoch 0's packing), set on first use
        self.num_replicas, self.rank, self.pad = 1, 0, False
        if isinstance(sampler, DistributedSampler):
            self.num_replicas, self.rank = int(sampler.num_replicas), int(sampler.rank)
            self.pad = not isinstance(sampler, UnrepeatedDistributedSamplerWrapper)

    @property
    def epoch(self) -> int:
        """The current epoch: the sampler's (set by Lightning at every epoch start), else the last :meth:`set_epoch`."""
        return int(getattr(self.sampler, "epoch", self._epoch))

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch``."""
        self._epoch = int(epoch)
        if callable(getattr(self.sampler, "set_epoch", None)):
            self.sampler.set_epoch(epoch)

    def _packed(self, epoch: int) -> tuple[list[list[int]], torch.Generator]:
        n = len(self.sizes)
        g = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
        batches: list[list[int]] = []
        for start in range(0, n, self.bucket_size):
            bucket = sorted(order[start:start + self.bucket_size], key=lambda i: self.sizes[i])
            batches.extend(pack_by_budget(self.sizes, self.budget, bucket))
        return batches, g

    def _even_out(self, batches: list[list[int]], target: int) -> list[list[int]]:
        """``batches`` brought to ``target`` batches: the largest (by nodes) split in two while there are too few,
        the two smallest merged while there are too many and the merge fits the budget."""
        batches = [list(b) for b in batches]
        cost = lambda b: sum(self.sizes[i] for i in b)  # noqa: E731
        while len(batches) < target:
            k = max(range(len(batches)), key=lambda j: (len(batches[j]) > 1, cost(batches[j])))
            if len(batches[k]) < 2:
                break  # fewer examples than batches: nothing left to split
            big = batches.pop(k)
            half = len(big) // 2
            batches[k:k] = [big[:half], big[half:]]
        while len(batches) > target:
            a, b = sorted(range(len(batches)), key=lambda j: cost(batches[j]))[:2]
            if cost(batches[a]) + cost(batches[b]) > self.budget:
                break  # no merge fits: this epoch keeps its extra batches
            merged = batches[min(a, b)] + batches[max(a, b)]
            batches = [x for j, x in enumerate(batches) if j not in (a, b)]
            batches.insert(min(a, b), merged)
        return batches

    def global_batches(self) -> list[list[int]]:
        """Every rank's batches of the current epoch, before the split between ranks."""
        n = len(self.sizes)
        if not self.shuffle:
            return pack_by_budget(self.sizes, self.budget, sorted(range(n), key=lambda i: (self.sizes[i], i)))
        if self._count is None:
            self._count = len(self._packed(0)[0])
        batches, g = self._packed(self.epoch)
        batches = self._even_out(batches, self._count)
        perm = torch.randperm(len(batches), generator=g).tolist()
        return [batches[p] for p in perm]

    def _rank_batches(self) -> list[list[int]]:
        batches = self.global_batches()
        if self.num_replicas == 1 or not batches:
            return batches
        if self.pad:
            per_rank = math.ceil(len(batches) / self.num_replicas)
            total = per_rank * self.num_replicas
            batches = batches + [batches[i % len(batches)] for i in range(total - len(batches))]
        return batches[self.rank::self.num_replicas]

    def skip_next(self, batches: int) -> None:
        """Leave out the first ``batches`` batches of the next pass only (their order is the epoch's own)."""
        self._skip = max(0, int(batches))

    def __iter__(self) -> Iterator[list[int] | list[tuple[int, int]]]:
        skip, self._skip = self._skip, 0
        for batch in self._rank_batches()[skip:]:
            yield [(i, self.epoch) for i in batch] if self.with_epoch else batch

    def __len__(self) -> int:
        return len(self._rank_batches())
