"""Every shipped config parses with the CLI's parser and instantiates model, data module and trainer."""
from __future__ import annotations

from pathlib import Path

import pytest

from pa_geo.errors import ConfigError
from pa_geo.train.cli import build_cli
from pa_geo.train.datamodule import PaGeoDataModule
from pa_geo.train.module import PaGeoModule

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
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
    assert set(PEER_17 + ATOM3D + ["demo_ss3", "demo_rsa", "demo_solubility"]) <= names


@pytest.mark.parametrize("config", TASK_CONFIGS + MULTITASK, ids=lambda p: p.stem)
def test_config_instantiates(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pa_geo.tasks import get_task

    cli = _instantiate(tmp_path, monkeypatch, config)
    assert isinstance(cli.model, PaGeoModule) and isinstance(cli.datamodule, PaGeoDataModule)
    spec = get_task(cli.datamodule.task)
    assert cli.model.task == cli.datamodule.task  # linked data.task -> model.task
    assert list(cli.model.specs) == cli.datamodule.task_names
    monitors = [cb.monitor for cb in cli.trainer.checkpoint_callbacks]
    assert monitors == [f"val/{spec.primary_metric}"]
    assert {type(lg).__name__ for lg in cli.trainer.loggers} == {"CSVLogger", "TensorBoardLogger"}


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_overrides_by_name_only(ablation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = CONFIGS / ("fluorescence.yaml" if "probe" in ablation.stem else "demo_ss3.yaml")
    cli = _instantiate(tmp_path, monkeypatch, base, ablation)
    enc = cli.model.encoder
    if ablation.stem.startswith("pool_"):
        name = ablation.stem.removeprefix("pool_")
        assert all(p.name == name for p in enc.predictor.pools)
        ref = _instantiate(tmp_path, monkeypatch, base).model.encoder
        assert type(enc.adapter) is type(ref.adapter)  # only the pooling changed
    elif "probe" in ablation.stem:
        assert type(enc).__name__ == "MeanEmbeddingEncoder" and enc.graph_dim == 1280
    else:
        def has_cross(adapter) -> bool:
            return any(n.endswith(".cross") for n, _ in adapter.named_modules())

        assert not has_cross(enc.adapter)
        assert has_cross(_instantiate(tmp_path, monkeypatch, base).model.encoder.adapter)


def test_unknown_task_in_config_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="unknown task 'no_such_task'"):
        build_cli(["--config", str(CONFIGS / "demo_ss3.yaml"), "--data.task", "no_such_task"], run=False)
