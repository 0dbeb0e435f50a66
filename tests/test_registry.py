"""The shared registry helper: normalisation, duplicate rule, did-you-mean errors."""
import doctest

import pytest

import pa_geo.registry
from pa_geo.errors import ConfigError
from pa_geo.registry import Registry, normalize_name


def test_doctests() -> None:
    assert doctest.testmod(pa_geo.registry).failed == 0


def test_names_are_normalised_and_aliases_resolve() -> None:
    reg: Registry[type] = Registry("thing")
    reg.register("ESM-IF1", int, aliases=("inverse fold",))
    assert normalize_name("ESM-IF1") == "esm_if1"
    assert reg.get("esm_if1") is int and reg.get("Inverse-Fold") is int
    assert "ESM_IF1" in reg and "nope" not in reg
    assert reg.names() == ["esm_if1"] and reg.aliases() == {"inverse_fold": "esm_if1"}


def test_duplicate_rule() -> None:
    reg: Registry[type] = Registry("thing")
    reg.register("a", int)
    reg.register("a", int)  # same object: no-op
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("A", float)
    reg.register("a", float, overwrite=True)
    assert reg.get("a") is float
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("b", str, aliases=("a",))


def test_unknown_name_suggests_and_lists() -> None:
    reg: Registry[type] = Registry("pooling operator")
    for n in ("topk", "sag", "graclus"):
        reg.register(n, object)
    with pytest.raises(ConfigError) as err:
        reg.get("top_k")
    msg = str(err.value)
    assert "did you mean 'topk'" in msg and "known pooling operators: graclus, sag, topk" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="unknown pooling operator 'zzz'; known"):
        reg.get("zzz")
    reg.unregister("sag")
    assert reg.names() == ["graclus", "topk"]
