"""The conv and pooling registries run on pa_geo.registry.Registry: normalised names, the duplicate rule,
"did you mean" errors, and their public helpers."""
from __future__ import annotations

import pytest

from pa_geo.errors import ConfigError
from pa_geo.nn.convs import CONVS, available_convs, get_conv, register_conv
from pa_geo.nn.pooling import available_poolings, get_pooling, register_pooling
from pa_geo.nn.pooling.base import GraphPooling
from pa_geo.nn.pooling.base import POOLINGS
from pa_geo.nn.pooling.topk import TopKPool
from pa_geo.registry import Registry


def test_both_registries_are_the_shared_helper():
    assert isinstance(CONVS, Registry) and isinstance(POOLINGS, Registry)
    assert available_convs() == CONVS.names() and available_poolings() == POOLINGS.names()


def test_conv_names_are_normalised_and_unknown_names_suggest_close_ones():
    assert get_conv("GAT", 8, 8).name == "gat"
    with pytest.raises(ConfigError, match=r"unknown conv 'gatv3' \(did you mean 'gatv2'"):
        get_conv("gatv3", 8, 8)


def test_register_conv_duplicate_rule():
    from torch import nn

    def builder(i, o, e, **kw):
        return nn.Linear(i, o)

    try:
        register_conv("test-linear")(builder)
        register_conv("test_linear")(builder)  # same object again: no-op
        layer = get_conv("Test-Linear", 4, 3)
        assert layer.name == "test_linear" and not layer.uses_edge_attr
        with pytest.raises(ConfigError, match="already registered"):
            register_conv("test_linear")(lambda i, o, e: nn.Linear(i, o))
        register_conv("test_linear", uses_edge_attr=True, overwrite=True)(builder)
        assert CONVS.get("test_linear").uses_edge_attr
    finally:
        CONVS.unregister("test_linear")
    assert "test_linear" not in available_convs()


def test_register_pooling_duplicate_rule_and_type_check():
    with pytest.raises(ConfigError, match="already registered"):
        register_pooling("TopK")(type("OtherTopK", (GraphPooling,), {}))
    assert register_pooling("topk")(TopKPool) is TopKPool and TopKPool.name == "topk"
    with pytest.raises(TypeError, match="GraphPooling subclass"):
        register_pooling("linear")(int)
    with pytest.raises(ConfigError, match=r"did you mean 'topk'"):
        get_pooling("topkk", 8)
    assert get_pooling("TopK", 8, ratio=0.3).ratio == 0.3
