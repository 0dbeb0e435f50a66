"""Hugging Face ``transformers`` protein encoders (ESM-2, ProtBert, ProtT5, Ankh) as frozen per-residue backbones.

    get_backbone("hf", model="facebook/esm2_t33_650M_UR50D", layers=[33])   # hub id, found in the local HF cache
    get_backbone("hf", model="/data/prot_t5_xl_half_uniref50-enc")           # or a local save_pretrained directory

Nothing is ever downloaded: a hub id must already be in the Hugging Face cache (``$HF_HOME/hub``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from pa_geo.backbones._weights import combine_digest, file_digest
from pa_geo.backbones.base import Backbone, Layer, Prepared, chain_jobs, register_backbone, resolve_layers
from pa_geo.backbones.hf_families import FAMILIES, HFFamily, detect_family
from pa_geo.backbones.windows import blend_windows, plan_windows
from pa_geo.errors import BackboneUnavailable, ConfigError
from pa_geo.io.protein import Protein

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "spiece.model", "vocab.json", "merges.txt")


def resolve_hf_model(model: str) -> Path:
    """Directory holding ``config.json`` + weights: ``model`` is a local directory or a hub id already in the
    Hugging Face cache (looked up with ``local_files_only``; never downloaded).

    Raises :class:`BackboneUnavailable` (one line) saying where to put the files.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneUnavailable(f"hf: {path} has no config.json; pass a directory written by "
                                      f"save_pretrained (config.json, weights, tokenizer files)")
        return path
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep in model.replace("/", ""):
        raise BackboneUnavailable(f"hf: model directory {path} not found")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        raise BackboneUnavailable(
            f"hf: {model!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}, set by HF_HOME); "
            f"pa_geo never downloads: copy the model's snapshot there or pass a local directory, e.g. "
            f"model=/path/to/{model.split('/')[-1]}") from None


def _digest_dir(path: Path) -> str:
    """Digest of the weight files and tokenizer/config files of a model directory (file_digest per file)."""
    files = sorted(f for f in path.iterdir() if f.is_file() and (f.name.endswith(WEIGHT_SUFFIXES)
                                                                 or f.name in TOKENIZER_FILES))
    if not any(f.name.endswith(WEIGHT_SUFFIXES) for f in files):
        raise BackboneUnavailable(f"hf: {path} has no weight file (*.safetensors / pytorch_model*.bin)")
    return combine_digest(*[(f.name, file_digest(f)) for f in files])


@register_backbone("hf")
class HFBackbone(Backbone):
    """A ``transformers`` encoder; layer ``k`` = ``hidden_states[k]`` (0 = embeddings; the last layer is the
    model's ``last_hidden_state``, after its final layer norm).

    Args:
        model: local ``save_pretrained`` directory or a hub id present in the local HF cache.
        layers: ints (negative counts from the end), ``"all"`` or None (last layer).
        family: ``esm`` / ``protbert`` / ``prot_t5`` / ``ankh`` (default: detected from the config and the
            tokenizer's vocabulary; see :mod:`pa_geo.backbones.hf_families` for each one's tokenisation).
        window: residues per forward (default: the model's absolute positions; T5 models: unlimited).
        overlap: residues shared by consecutive windows (default ``window // 4``), blended with linear ramps.
        attn_implementation: passed to ``from_pretrained`` (default ``"sdpa"``; ``"eager"`` where a model lacks it).

    Each chain is embedded on its own; rows are the residues (special tokens stripped). bfloat16 autocast on CUDA
    by default, float32 on CPU.
    """

    level = "sequence"
    half_on_cuda = True
    batch_tokens_by_device = {"cpu": 1024, "*": 16384}

    def __init__(self, model: str | None = None, layers: Sequence[int] | int | str | None = None,
                 family: str | None = None, window: int | None = None, overlap: int | None = None,
                 attn_implementation: str = "sdpa") -> None:
        import transformers

        if not model:
            raise ConfigError("hf: pass model=<local directory or hub id>, e.g. facebook/esm2_t33_650M_UR50D")
        path = resolve_hf_model(str(model))
        config = transformers.AutoConfig.from_pretrained(path)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        vocab = tokenizer.get_vocab()
        fam: type[HFFamily] = FAMILIES.get(family) if family else detect_family(config.model_type, vocab, str(path))
        net = self._load(transformers, fam, path, attn_implementation)
        n = int(getattr(config, "num_hidden_layers", None) or config.num_layers)
        super().__init__(resolve_layers("hf", layers, range(n + 1), n))
        self.model, self.tokenizer, self.family, self.path = net, tokenizer, fam, path
        self._vocab = vocab
        limit = fam.max_residues(config)
        self.window = int(window or limit or 0) or None
        if self.window is not None and (self.window < 1 or (limit is not None and self.window > limit)):
            raise ConfigError(f"hf: window {self.window} outside 1..{limit} (the model's positions)")
        self.overlap = int((self.window or 0) // 4 if overlap is None else overlap)
        if self.window is not None:
            plan_windows(0, self.window, self.overlap)  # validates overlap
        self._dim = int(config.hidden_size if hasattr(config, "hidden_size") else config.d_model)
        self._digest = _digest_dir(path)

    @staticmethod
    def _load(transformers, fam: type[HFFamily], path: Path, attn: str) -> torch.nn.Module:
        cls = getattr(transformers, fam.model_class)
        kwargs = {"add_pooling_layer": False} if fam.model_class in ("EsmModel", "BertModel") else {}
        verbosity, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
        transformers.logging.set_verbosity_error()  # unused decoder / pooler weights are expected
        transformers.logging.disable_progress_bar()
        try:
            try:
                net = cls.from_pretrained(path, attn_implementation=attn, dtype=torch.float32, **kwargs)
            except ValueError as err:  # this architecture has no such attention implementation
                if attn == "eager":
                    raise
                net = cls.from_pretrained(path, attn_implementation="eager", dtype=torch.float32, **kwargs)
                net.pa_geo_attn_fallback = " ".join(str(err).split())[:200]
        except (OSError, RuntimeError) as err:
            raise BackboneUnavailable(f"hf: {path}: cannot load {fam.model_class} "
                                      f"({' '.join(str(err).split())[:300]})") from None
        finally:
            transformers.logging.set_verbosity(verbosity)
            if bars:
                transformers.logging.enable_progress_bar()
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    @classmethod
    def layer_widths(cls, layers: Sequence[Layer], **options) -> dict[Layer, int]:
        """The model's hidden size for every layer, read from its ``config.json`` (no weights loaded)."""
        import transformers

        if not options.get("model"):
            raise ConfigError("hf: pass model=<local directory or hub id>, e.g. facebook/esm2_t33_650M_UR50D")
        config = transformers.AutoConfig.from_pretrained(resolve_hf_model(str(options["model"])))
        width = int(config.hidden_size if hasattr(config, "hidden_size") else config.d_model)
        return {layer: width for layer in layers}

    @property
    def dims(self) -> dict[Layer, int]:
        return {layer: self._dim for layer in self.layers}

    @property
    def fingerprint(self) -> str:
        return combine_digest(self._digest, self.family.name, self.window, self.overlap)

    def max_residues(self) -> int | None:
        return self.window

    def _prepare_inputs(self, proteins: Sequence[Protein]) -> tuple[dict[str, torch.Tensor], list[tuple]]:
        """``(tokenizer batch, jobs)``: one row per window of every chain; ``jobs[j] = (protein index, residue
        indices, window plan, first row)``. Each row's non-special tokens are checked to be its residues."""
        jobs, items = [], []
        for pi, idx, seq in chain_jobs(proteins):
            seq = self.family.clean(seq, self._vocab)
            plan = plan_windows(len(seq), self.window, self.overlap) if self.window else [(0, len(seq))]
            jobs.append((pi, idx, plan, len(items)))
            items.extend(seq[s:e] for s, e in plan)
        enc = self.tokenizer([self.family.text(s) for s in items], is_split_into_words=self.family.split_words,
                             padding=True, return_tensors="pt", return_special_tokens_mask=True)
        rows = (enc.pop("special_tokens_mask") == 0) & (enc["attention_mask"] == 1)
        counts = rows.sum(1).tolist()
        for k, (s, n) in enumerate(zip(items, counts)):
            if n != len(s):
                raise ConfigError(f"hf: the {self.family.name} tokenizer of {self.path} made {n} residue tokens "
                                  f"for {len(s)} residues (sequence starting {s[:20]!r}); wrong family?")
        enc["rows"] = rows
        return dict(enc), jobs

    def _embed_prepared(self, prepared: Prepared) -> list[dict[Layer, torch.Tensor]]:
        enc, jobs = prepared.inputs
        rows = enc["rows"]
        dev = self.device
        out = self.model(input_ids=enc["input_ids"].to(dev), attention_mask=enc["attention_mask"].to(dev),
                         output_hidden_states=True)
        hidden = {layer: out.hidden_states[layer] for layer in self.layers}

        def chain_rows(j: int, layer: Layer) -> torch.Tensor:
            _, idx, plan, first = jobs[j]
            pieces = [hidden[layer][first + k][rows[first + k].to(dev)].float().cpu() for k in range(len(plan))]
            return blend_windows(pieces, plan, len(idx), self.overlap)

        return self._assemble_chains(prepared.proteins, jobs, chain_rows)
