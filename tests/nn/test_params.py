"""parameter_report: per-submodule trainable / frozen counts, totals, table, fraction of ESM-1b."""
from __future__ import annotations

import pytest
from torch import nn

from pa_geo.nn.adapter import ProteinAdapter
from pa_geo.nn.params import ESM1B_NUM_PARAMS, parameter_report


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(10, 10)      # 110
        self.head = nn.Linear(10, 2)         # 22
        self.tied = self.head                # shared: counted once
        self.scale = nn.Parameter(nn.init.ones_(nn.Linear(1, 3).weight))  # 3, on the module itself
        self.frozen.requires_grad_(False)


def test_counts_per_top_level_submodule_and_totals():
    rep = parameter_report(Toy(), {"esm1b": 1000})
    rows = {r.name: (r.trainable, r.frozen) for r in rep.rows}
    assert rows == {"(self)": (3, 0), "frozen": (0, 110), "head": (22, 0)}  # the alias "tied" is not repeated
    assert rep.trainable == 25 and rep.frozen == 1110 and rep.total == 1135
    assert rep.fraction_of(1000) == pytest.approx(0.025)
    with pytest.raises(ValueError):
        rep.fraction_of(0)
    with pytest.raises(ValueError):
        parameter_report(Toy(), {"bad": -1})


def test_table_lists_every_row_and_the_totals():
    text = str(parameter_report(Toy(), {"esm1b": 1000}))
    lines = text.splitlines()
    assert lines[0].split() == ["module", "trainable", "frozen"]
    assert any(line.split() == ["frozen", "0", "110"] for line in lines)
    assert any(line.split() == ["esm1b", "0", "1,000"] for line in lines)
    assert any(line.split() == ["total", "25", "1,110"] for line in lines)
    assert "2.20%" in lines[-1]


def test_default_adapter_trains_a_small_fraction_of_esm1b():
    adapter = ProteinAdapter({"emb_esm1b_33": 1280, "emb_esm_if1_3": 512})
    rep = parameter_report(adapter, {"esm1b (frozen)": ESM1B_NUM_PARAMS})
    assert rep.trainable == sum(p.numel() for p in adapter.parameters())
    assert 0 < rep.fraction_of(ESM1B_NUM_PARAMS) < 0.02
    assert ESM1B_NUM_PARAMS == 652_356_534


def test_default_adapter_plus_predictor_trains_under_two_percent_of_esm1b():
    try:
        from pa_geo.nn.predictor import MultiScalePredictor
        predictor = MultiScalePredictor(128)
    except ImportError as err:  # torch_scatter / tgp not built yet
        pytest.skip(f"MultiScalePredictor unavailable: {err}")
    from pa_geo.nn.encoder import AdapterEncoder
    enc = AdapterEncoder(ProteinAdapter({"emb_esm1b_33": 1280, "emb_esm_if1_3": 512}), predictor)
    rep = parameter_report(enc, {"esm1b (frozen)": ESM1B_NUM_PARAMS})
    assert [r.name for r in rep.rows] == ["adapter", "predictor"]
    assert rep.rows[1].trainable == sum(p.numel() for p in predictor.parameters() if p.requires_grad)
    assert rep.fraction_of(ESM1B_NUM_PARAMS) <= 0.02
