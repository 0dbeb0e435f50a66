"""The one greedy budget packing (``pa_geo.batching``) behind the embed runner and the node-budget sampler."""
from __future__ import annotations

import doctest
import random

import pa_geo.batching
from pa_geo.batching import pack_by_budget


def test_doctests() -> None:
    assert doctest.testmod(pa_geo.batching).failed == 0


def test_every_index_once_in_order_and_within_budget() -> None:
    rng = random.Random(0)
    for _ in range(200):
        sizes = [rng.randint(1, 50) for _ in range(rng.randint(0, 40))]
        order = rng.sample(range(len(sizes)), len(sizes))
        budget = rng.randint(10, 120)
        batches = pack_by_budget(sizes, budget, order)
        assert [i for b in batches for i in b] == order
        assert all(len(b) == 1 or sum(sizes[i] for i in b) <= budget for b in batches)
        padded = pack_by_budget(sizes, budget, sorted(order, key=lambda i: -sizes[i]), padded=True)
        assert all(len(b) == 1 or len(b) * max(sizes[i] for i in b) <= budget for b in padded)


def test_padding_cap_and_items_that_go_alone() -> None:
    assert pack_by_budget([10, 1], 100, padded=True, max_padding=0.4) == [[0], [1]]  # 9 of 20 would be padding
    assert pack_by_budget([10, 9], 100, padded=True, max_padding=0.5) == [[0, 1]]
    assert pack_by_budget([5, 5, 5], 100, alone=lambda n: n > 4) == [[0], [1], [2]]
