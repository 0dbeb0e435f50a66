"""Greedy packing of items into batches under a budget: the one rule behind the embed runner's padded batches
(:func:`pa_geo.cache.runner.make_batches`), the node-budget batch sampler of training and prediction.

>>> pack_by_budget([3, 4, 2, 5], budget=7)
[[0, 1], [2, 3]]
>>> pack_by_budget([9, 2, 2], budget=7)  # an item over the budget goes alone
[[0], [1, 2]]
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence


def pack_by_budget(sizes: Sequence[int], budget: int, order: Iterable[int] | None = None, padded: bool = False,
                   max_padding: float = 1.0, alone: Callable[[int], bool] | None = None) -> list[list[int]]:
    """Indices ``order`` (default ``0..len(sizes)-1``) cut into consecutive batches, greedily: an index joins the
    current batch while the batch's cost stays within ``budget``, else it starts the next batch.

    Args:
        sizes: ``[n]`` size of every item (nodes of a graph, residues of a chain).
        budget: the most a batch may cost; an item that alone costs more gets a batch of its own.
        order: the order items are taken in (its batches keep that order).
        padded: cost = members x largest member (a padded tensor), else the sum of the sizes.
        max_padding: padded batches: at most this fraction of the padded cost may be padding.
        alone: ``alone(size)`` True puts that item in a batch of its own.
    Returns:
        ``[[index, ...], ...]``, every index of ``order`` exactly once.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    total = largest = 0
    for i in range(len(sizes)) if order is None else order:
        size = int(sizes[i])
        if current:
            wider = max(largest, size)
            cost = (len(current) + 1) * wider if padded else total + size
            full = cost > budget or (padded and total + size < (1.0 - max_padding) * cost)
            if full or (alone is not None and (alone(size) or alone(largest))):
                batches.append(current)
                current, total, largest = [], 0, 0
        current.append(i)
        total += size
        largest = max(largest, size)
    if current:
        batches.append(current)
    return batches
