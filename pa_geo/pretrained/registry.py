"""The models that ship inside the package: name -> checkpoint file, metrics JSON, model card, input kind.

Files live in ``pa_geo/pretrained/checkpoints/`` (package data): ``<name>.ckpt`` (a slim Lightning checkpoint:
weights, the model's init arguments, the ``pa_geo`` block with task and backbones; no optimiser state) and
``<name>.json`` (the test metrics the model card shows, written by ``scripts/train_pretrained.py``).

Which variant reads which input is chosen **by name**, never guessed per file: ``ss8-rsa`` reads full backbones
(N, CA, C, O) and refuses a CA trace in one line naming ``ss8-rsa-ca``; ``ss8-rsa-ca`` reads every input as its CA
trace (a full-backbone file is reduced to its CA atoms first), so one run uses one model for every file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pa_geo.errors import ConfigError
from pa_geo.registry import Registry

FILES = Path(__file__).resolve().parent / "checkpoints"
CARD = "docs/models/ss8-rsa.md"
INPUT_KINDS = {"backbone": "full backbone (N, CA, C, O)", "ca_trace": "CA trace"}


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model. ``input_kind``: ``backbone`` or ``ca_trace``; ``ca_variant``: the model to suggest for
    a CA trace (None when this one reads them)."""

    name: str
    input_kind: str
    description: str
    card: str = CARD
    ca_variant: str | None = None

    @property
    def checkpoint(self) -> Path:
        """``pa_geo/pretrained/checkpoints/<name>.ckpt``."""
        return FILES / f"{self.name}.ckpt"

    @property
    def metrics_file(self) -> Path:
        """``pa_geo/pretrained/checkpoints/<name>.json``."""
        return FILES / f"{self.name}.json"

    @property
    def installed(self) -> bool:
        """Whether the checkpoint file is in this installation."""
        return self.checkpoint.is_file()

    @property
    def size_bytes(self) -> int:
        """Size of the checkpoint file (0 when it is not installed)."""
        return self.checkpoint.stat().st_size if self.installed else 0

    def metrics(self) -> dict[str, Any]:
        """The metrics JSON (``{}`` when it is not installed)."""
        if not self.metrics_file.is_file():
            return {}
        try:
            return json.loads(self.metrics_file.read_text())
        except ValueError as err:
            raise ConfigError(f"{self.metrics_file}: not valid JSON ({err})") from None

    def require(self) -> Path:
        """The checkpoint path; one-line :class:`ConfigError` when the file is not installed."""
        if not self.installed:
            raise ConfigError(f"pretrained model {self.name}: {self.checkpoint.name} is not in this installation "
                              f"({FILES}); train it with scripts/train_pretrained.py or reinstall pa_geo")
        return self.checkpoint


MODELS: Registry[ShippedModel] = Registry("pretrained model")
MODELS.register("ss8-rsa", ShippedModel(
    "ss8-rsa", "backbone", "8-state DSSP + relative solvent accessibility per residue from full backbones",
    ca_variant="ss8-rsa-ca"))
MODELS.register("ss8-rsa-ca", ShippedModel(
    "ss8-rsa-ca", "ca_trace", "8-state DSSP + relative solvent accessibility per residue from CA traces "
    "(cryo-EM traces, coarse-grained models)"))


def get_model(name: str) -> ShippedModel:
    """The entry ``name`` (``ss8-rsa`` or ``ss8_rsa``); unknown names are a one-line :class:`ConfigError`."""
    return MODELS.get(name)


def available() -> list[str]:
    """Names of the shipped models whose checkpoint is installed, sorted."""
    return sorted(MODELS.get(n).name for n in MODELS.names() if MODELS.get(n).installed)
