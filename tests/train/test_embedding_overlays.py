"""``configs/embeddings/*.yaml`` switch every task's backbones with one ``--config``: the data module keeps the levels
a task can read, and the adapter's levels (and the structure encoders' sequence levels) follow, with widths from each
backbone; ``data.extra_levels`` adds a node field that is not an embedding."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pa_geo.train.cli import build_cli
from tests.helpers.hf_models import make_tiny_hf_esm

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OVERLAYS = {  # overlay -> {backbone level: (backbone, layer, width)}
    "esm": {"sequence": ("esm1b", 33, 1280), "structure": ("esm_if1", 8, 512)},
    "offline": {"sequence": ("near", 8, 256), "structure": ("proteinmpnn", 3, 128)},
    "offline_ca": {"sequence": ("near", 8, 256), "structure": ("proteinmpnn_ca", 3, 128)},
}
TASKS = {"fluorescence": ("sequence",), "lba_30": ("sequence", "structure"), "res": ("structure",),
         "demo_ss8": ("sequence", "structure")}
EXTRA_LEVELS = {"demo_ss8": {"geom": 160}}  # levels a task config adds besides the embeddings (data.extra_levels)


def _build(*configs: str, extra: tuple[str, ...] = ()):
    args = [a for c in configs for a in ("--config", str(CONFIGS / c))]
    return build_cli([*args, *extra, "--trainer.accelerator", "cpu"], run=False)


@pytest.mark.parametrize("overlay", list(OVERLAYS))
@pytest.mark.parametrize("task", list(TASKS))
def test_one_config_switches_the_backbones_and_the_levels_follow(task, overlay, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = _build(f"{task}.yaml", f"embeddings/{overlay}.yaml")
    want = [OVERLAYS[overlay][level] for level in TASKS[task]]
    assert [(e["backbone"], e["layers"]) for e in cli.datamodule.embeddings] == [(b, [n]) for b, n, _ in want]
    assert cli.model.encoder.adapter.levels == {**{f"emb_{b}_{n}": w for b, n, w in want}, **EXTRA_LEVELS.get(task, {})}
    assert cli.model.encoder.predictor.in_dim == cli.model.encoder.adapter.out_dim


def test_structure_encoders_read_the_sequence_levels_of_any_overlay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = _build("lba_30.yaml", "embeddings/offline.yaml", "ablations/esm_gearnet.yaml")
    assert cli.model.encoder.adapter.sequence_levels == {"emb_near_8": 256}


def test_hugging_face_overlay_takes_its_width_from_the_model_config(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    hub = tmp_path / "hub"  # the layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<rev>/...}
    repo = hub / "models--facebook--esm2_t33_650M_UR50D"
    shutil.copytree(make_tiny_hf_esm(tmp_path / "tiny"), repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    cli = _build("lba_30.yaml", "embeddings/hf.yaml")
    assert cli.model.encoder.adapter.levels == {"emb_hf_33": 32, "emb_esm_if1_8": 512}  # tiny ESM-2: 32-d
    assert cli.datamodule.embeddings[0]["options"] == {"model": "facebook/esm2_t33_650M_UR50D"}


def test_an_extra_level_joins_the_embedding_levels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = _build("demo_ss8.yaml", extra=("--data.extra_levels", json.dumps({"geom": 16})))
    assert cli.model.encoder.adapter.levels == {"emb_near_8": 256, "emb_proteinmpnn_ca_3": 128, "geom": 16}
    with pytest.raises(Exception, match="extra_levels"):
        _build("demo_ss8.yaml", extra=("--data.extra_levels", json.dumps({"geom": 0})))


def test_extra_levels_by_name_take_the_schema_width(tmp_path, monkeypatch):
    from pa_geo.errors import ConfigError
    from pa_geo.graphs.geometry import GEOM_DIM
    from pa_geo.graphs.schema import FIELD_WIDTHS
    from pa_geo.train.levels import field_levels

    monkeypatch.chdir(tmp_path)
    assert FIELD_WIDTHS["geom"] == GEOM_DIM == 160
    cli = _build("demo_ss8.yaml", extra=("--data.extra_levels", json.dumps(["geom"])))
    assert cli.model.encoder.adapter.levels == {"emb_near_8": 256, "emb_proteinmpnn_ca_3": 128, "geom": GEOM_DIM}
    assert [(lv.field, lv.width) for lv in field_levels({"geom": None, "other": 7})] == [("geom", 160), ("other", 7)]
    assert field_levels(None) == [] and field_levels([]) == []
    for bad, match in [(["nope"], r"'nope' has no width declared by the graph schema \(declared: geom\)"),
                       (["geom", "geom"], "listed twice"), (["a.b"], "not a node field name"),
                       ({"geom": -1}, "width >= 1")]:
        with pytest.raises(ConfigError, match=match) as err:
            field_levels(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(Exception, match="no width declared"):
        _build("demo_ss8.yaml", extra=("--data.extra_levels", json.dumps(["nope"])))


def test_geometry_ablations_switch_one_geometry_piece(tmp_path, monkeypatch):
    """On the demo's structure config as shipped (geom level and edge-feature convs on, geometric bias off), each
    geometry ablation config switches its one piece and leaves the others."""
    monkeypatch.chdir(tmp_path)

    def build(ablation: str | None):
        args = ["--config", str(CONFIGS / "multitask/demo_ss8_rsa.yaml")]
        if ablation:
            args += ["--config", str(CONFIGS / "ablations" / f"{ablation}.yaml")]
        return build_cli([*args, "--trainer.accelerator", "cpu"], run=False).model.encoder

    full = build(None)
    assert "geom" in full.adapter.levels and full.adapter.pair_map is None and full.adapter.bias_spec is None
    assert full.predictor.edge_dim == 21 and all(c.uses_edge_attr for c in full.predictor.convs)
    assert {c.name for c in full.predictor.convs} == {"transformer"}
    no_geom = build("no_geom_level")
    assert no_geom.adapter.levels == {k: v for k, v in full.adapter.levels.items() if k != "geom"}
    assert no_geom.adapter.pair_map is None and no_geom.predictor.edge_dim == 21
    bias = build("geometric_bias")
    assert bias.adapter.pair_map is not None and bias.adapter.bias_spec is not None
    assert "geom" in bias.adapter.levels and bias.predictor.edge_dim == 21
    gcn = build("gcn_predictor")
    assert gcn.predictor.edge_dim is None and {c.name for c in gcn.predictor.convs} == {"gcn"}
    assert not any(c.uses_edge_attr for c in gcn.predictor.convs)
    assert "geom" in gcn.adapter.levels and gcn.adapter.pair_map is None
