"""Find fair-esm checkpoints offline and build models through fair-esm's own ``load_model_and_alphabet_core``."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from pa_geo.backbones._esm_compat import import_inverse_folding
from pa_geo.backbones._weights import load_checkpoint
from pa_geo.errors import BackboneUnavailable


def resolve_esm_checkpoint(model: str, backbone: str) -> Path:
    """Path of a fair-esm checkpoint: ``model`` is a local ``.pt`` path or a fair-esm hub name.

    Hub names are looked up where fair-esm's hub loader caches them (``torch.hub.get_dir()/checkpoints/<name>.pt``);
    nothing is ever downloaded. Raises :class:`BackboneUnavailable` with one line saying which file is missing,
    where it was looked for and how to pass a local checkpoint.
    """
    model = str(model)
    if model.endswith(".pt") or "/" in model or "\\" in model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise BackboneUnavailable(f"{backbone}: checkpoint file {path} not found; pass an existing fair-esm "
                                      f"checkpoint as model=/path/to/<name>.pt")
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / f"{model}.pt"
    if not path.is_file():
        raise BackboneUnavailable(
            f"{backbone}: checkpoint {model}.pt not found in {path.parent} (fair-esm's torch-hub cache, set by "
            f"TORCH_HOME); pa_geo never downloads: copy it there or pass a local checkpoint, e.g. "
            f"model=/path/to/{model}.pt")
    return path


def load_esm_model(path: Path) -> tuple[torch.nn.Module, object]:
    """``(model, alphabet)`` from a fair-esm checkpoint file (ESM-1/1b ``{"args", "model"}``, ESM-2
    ``{"cfg", "model"}`` or ESM-IF1), unpickled weights-only, built by ``esm.pretrained.load_model_and_alphabet_core``.

    Contact-regression weights are not loaded (embeddings do not use them). Model in eval mode, on CPU.
    """
    import esm.pretrained

    data = load_checkpoint(path)
    if not isinstance(data, dict) or "model" not in data or not ({"args", "cfg"} & set(data)):
        raise BackboneUnavailable(f"{path}: not a fair-esm checkpoint (expected 'model' plus 'args' or 'cfg')")
    if "cfg" in data:
        name = "esm2"
    else:
        name = "esm1"
        if "invariant_gvp" in str(getattr(data["args"], "arch", "")):
            import_inverse_folding()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Regression weights not found")
            model, alphabet = esm.pretrained.load_model_and_alphabet_core(name, data, None)
    except (RuntimeError, ValueError, AttributeError, KeyError) as e:
        raise BackboneUnavailable(f"{path}: fair-esm cannot build a model from this checkpoint "
                                  f"({' '.join(str(e).split())[:300]})") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, alphabet
