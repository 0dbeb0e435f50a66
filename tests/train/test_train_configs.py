"""Every shipped config parses with the CLI's parser and instantiates model, data module and trainer; configs compose
(``extends``, ``{run_dir}``, task-derived checkpoint monitors); head widths come from the encoder and the task."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pa_geo.errors import ConfigError
from pa_geo.train.cli import build_cli
from pa_geo.train.datamodule import PaGeoDataModule
from pa_geo.train.module import PaGeoModule

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TASK_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml"))
MULTITASK = sorted((CONFIGS / "multitask").glob("*.yaml"))
ABLATIONS = sorted((CONFIGS / "ablations").glob("*.yaml"))
PEER_17 = ["fluorescence", "stability", "beta_lactamase", "aav", "thermostability", "gb1", "solubility",
           "subcellular_localization", "binary_localization", "fold", "secondary_structure", "contact", "yeast_ppi",
           "human_ppi", "ppi_affinity", "pdbbind", "bindingdb"]
ATOM3D = ["lba_30", "lba_60", "psr", "msp", "atom3d_ppi", "res"]


def _instantiate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *configs: Path):
    monkeypatch.chdir(tmp_path)  # loggers / checkpoint dirs are relative paths
    args = [a for c in configs for a in ("--config", str(c))]
    return build_cli(args, run=False)


def test_one_config_per_task() -> None:
    names = {p.stem for p in TASK_CONFIGS}
    assert set(PEER_17 + ATOM3D + ["demo_ss8", "demo_ss3", "demo_rsa", "demo_solubility"]) <= names


@pytest.mark.parametrize("config", TASK_CONFIGS + MULTITASK, ids=lambda p: p.stem)
def test_config_instantiates(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pa_geo.tasks import get_task

    cli = _instantiate(tmp_path, monkeypatch, config)
    assert isinstance(cli.model, PaGeoModule) and isinstance(cli.datamodule, PaGeoDataModule)
    spec = get_task(cli.datamodule.task)
    assert cli.model.task == cli.datamodule.task  # linked data.task -> model.task
    assert list(cli.model.specs) == cli.datamodule.task_names
    (checkpoint,) = cli.trainer.checkpoint_callbacks  # best.ckpt and last.ckpt (every epoch) from one callback
    assert (checkpoint.monitor, checkpoint.mode) == (f"val/{spec.primary_metric}",
                                                     "max" if spec.higher_is_better else "min")
    assert (checkpoint.filename, checkpoint.save_last) == ("best", True)
    assert {type(lg).__name__ for lg in cli.trainer.loggers} == {"CSVLogger", "TensorBoardLogger"}
    run_dir = Path(cli.trainer.default_root_dir)
    assert run_dir.parts[-2] == "runs" and Path(cli.trainer.checkpoint_callbacks[0].dirpath) == tmp_path / run_dir / \
        "checkpoints"
    text = yaml.safe_load(config.read_text())
    assert "trainer" not in text or set(text["trainer"]) <= {"max_epochs", "default_root_dir"}  # shared blocks
    # widths follow from data.embeddings and the encoder: no config states levels or input widths
    assert not {"levels", "in_dim", "out_dim"} & _keys(text), config


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    return {k for v in value for k in _keys(v)} if isinstance(value, list) else set()


def test_no_shipped_config_states_levels_or_input_widths() -> None:
    stating = [p.relative_to(CONFIGS) for p in sorted(CONFIGS.rglob("*.yaml"))
               if {"levels", "in_dim"} & _keys(yaml.safe_load(p.read_text()) or {})]
    assert stating == []


def _has_cross(module) -> bool:
    return any(n.endswith(".cross") for n, _ in module.named_modules())


# what each ablation changes, checked on the composed encoder (ref: the experiment's own encoder)
ABLATION_CHECKS = {
    "linear_probe": lambda enc, ref, cli: type(enc.adapter).__name__ == "MeanEmbeddingEncoder" and
    enc.predictor is None and cli.model.heads[cli.model.task].hidden_dim is None,
    "mlp_probe": lambda enc, ref, cli: type(enc.adapter).__name__ == "MeanEmbeddingEncoder" and enc.predictor is None
    and enc.adapter.mix is None and cli.model.heads[cli.model.task].hidden_dim == 128,
    "conv_e3nn": lambda enc, ref, cli: all(c.name == "e3nn" and type(c.conv).__name__ == "EquivariantConv"
                                           for c in enc.predictor.convs) and
    type(enc.adapter) is type(ref.adapter),
    "scalar_mix": lambda enc, ref, cli: enc.adapter.mix is not None and enc.predictor is None,
    "summed_levels_transformer": lambda enc, ref, cli: enc.adapter.fusion_first and not _has_cross(enc.adapter) and
    len(enc.adapter.blocks) == len(ref.adapter.blocks) and enc.adapter.d_model == ref.adapter.d_model,
    "no_self_attention": lambda enc, ref, cli: enc.adapter.blocks[0].attn is None and _has_cross(enc.adapter),
    "no_cross_attention": lambda enc, ref, cli: not _has_cross(enc.adapter) and
    len(enc.adapter.blocks[0].ffn) == len(enc.adapter.levels),
    "residue_level_mixing": lambda enc, ref, cli: type(enc.adapter.blocks[0].cross).__name__ ==
    "ResidueCrossAttention",
    "no_final_merge": lambda enc, ref, cli: enc.predictor.merge == "last",
    "global_pool_only": lambda enc, ref, cli: enc.predictor.num_scales == 1 and enc.predictor.pools[0].name == "none",
    "gearnet": lambda enc, ref, cli: type(enc.adapter).__name__ == "GearNetEncoder" and
    enc.adapter.sequence_levels is None,
    "esm_gearnet": lambda enc, ref, cli: type(enc.adapter).__name__ == "GearNetEncoder" and
    set(enc.adapter.sequence_levels) == {f for f in ref.adapter.levels if f.startswith("emb_near_")},
    "gvp": lambda enc, ref, cli: type(enc.adapter).__name__ == "GVPEncoder" and enc.adapter.sequence_levels is None,
    "esm_gvp": lambda enc, ref, cli: type(enc.adapter).__name__ == "GVPEncoder" and
    set(enc.adapter.sequence_levels) == {f for f in ref.adapter.levels if f.startswith("emb_near_")},
    # on with coordinates; a sequence-only task (no distances) switches it off again (pa_geo.train.levels)
    "geometric_bias": lambda enc, ref, cli: (enc.adapter.pair_map is not None) ==
    (enc.adapter.bias_spec is not None) == cli.datamodule.specs[cli.datamodule.task].has_structures and
    ref.adapter.pair_map is None and type(enc.adapter) is type(ref.adapter) and
    len(enc.adapter.blocks) == len(ref.adapter.blocks),
    "no_geom_level": lambda enc, ref, cli: "geom" not in enc.adapter.levels and
    enc.adapter.levels == {f: w for f, w in ref.adapter.levels.items() if f != "geom"},
    "gcn_predictor": lambda enc, ref, cli: enc.predictor.edge_dim is None and
    all(c.name == "gcn" and not c.uses_edge_attr for c in enc.predictor.convs) and
    type(enc.adapter) is type(ref.adapter),
}


@pytest.mark.parametrize("base", ["multitask/demo_ss8_rsa.yaml", "demo_solubility.yaml"])
@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_overrides_by_name_only(ablation: Path, base: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _instantiate(tmp_path, monkeypatch, CONFIGS / base, ablation)
    ref = _instantiate(tmp_path, monkeypatch, CONFIGS / base).model.encoder
    enc = cli.model.encoder
    if ablation.stem.startswith("pool_"):
        name = ablation.stem.removeprefix("pool_")
        assert all(p.name == name for p in enc.predictor.pools)
        assert type(enc.adapter) is type(ref.adapter)  # only the pooling changed
        return
    assert ablation.stem in ABLATION_CHECKS, f"no check for ablation {ablation.stem}"
    assert ABLATION_CHECKS[ablation.stem](enc, ref, cli)
    if hasattr(enc.adapter, "levels") and type(enc.adapter).__name__ != "GearNetEncoder" and \
            ablation.stem != "no_geom_level":
        assert enc.adapter.levels == ref.adapter.levels  # the task's levels carried over, never named again
    for task, head in cli.model.heads.items():  # heads re-bound to the new encoder's widths
        assert head.in_dim == getattr(enc, f"{head.reads}_dim"), task


def test_unknown_task_in_config_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="unknown task 'no_such_task'"):
        build_cli(["--config", str(CONFIGS / "demo_ss3.yaml"), "--data.task", "no_such_task"], run=False)


def test_head_widths_follow_the_encoder_and_conflicts_are_one_line(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    base = CONFIGS / "demo_ss3.yaml"
    cli = _instantiate(tmp_path, monkeypatch, base, CONFIGS / "ablations" / "global_pool_only.yaml")
    head = cli.model.heads["demo_ss3"]
    assert head.in_dim == cli.model.encoder.node_dim == 64 and head.out_dim == 3  # README's ablation command
    with pytest.raises(ConfigError, match="NodeHead in_dim=384 but the encoder's node_dim is 192"):
        build_cli(["--config", str(base), "--model.head.init_args.in_dim", "384"], run=False)
    with pytest.raises(ConfigError, match=r"out_dim=4 but the task has 3 output\(s\)"):
        build_cli(["--config", str(base), "--model.head.init_args.out_dim", "4"], run=False)
    with pytest.raises(ConfigError, match=r"\(residue kind\) needs a head for node inputs, got GraphHead"):
        build_cli(["--config", str(base), "--model.head", "pa_geo.nn.heads.GraphHead"], run=False)


def test_extends_is_expanded_and_the_saved_config_stands_alone(tmp_path: Path) -> None:
    from pa_geo.train.cli import expand_extends

    args = expand_extends(["fit", "--config", str(CONFIGS / "multitask" / "demo_ss8_rsa.yaml"), "--x", "1"])
    names = [Path(a).relative_to(CONFIGS).as_posix() for a in args if a.endswith(".yaml")]
    assert names == ["base/trainer.yaml", "embeddings/esm.yaml", "base/model.yaml", "embeddings/offline_ca.yaml",
                     "base/demo.yaml", "demo_ss8.yaml", "multitask/demo_ss8_rsa.yaml"] and args[0] == "fit" and args[-2:] == ["--x", "1"]
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        expand_extends(["--config", str(loop)])
    missing = tmp_path / "m.yaml"
    missing.write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        expand_extends(["--config", str(missing)])


def test_building_from_given_args_warns_nothing_about_sys_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    import warnings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["pa-geo", "embed", "--config", "x.yaml"])  # what `pa-geo embed --config` sees
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_cli(["--config", str(CONFIGS / "demo_ss8.yaml")], run=False)
    assert not [w for w in caught if "args parameter" in str(w.message)]


def test_the_data_module_is_built_once_and_handed_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    built = []
    original = PaGeoDataModule.__init__

    @functools.wraps(original)
    def counting(self, *args, **kwargs):  # keeps the signature the CLI's parser reads
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(PaGeoDataModule, "__init__", counting)
    cli = _instantiate(tmp_path, monkeypatch, CONFIGS / "demo_ss8.yaml")
    assert built == [cli.datamodule]
    assert cli.model.encoder.adapter.levels == {**{f"emb_{b}": w for b, w in (("near_8", 256), ("proteinmpnn_ca_3", 128))},
                                                "geom": 160}
