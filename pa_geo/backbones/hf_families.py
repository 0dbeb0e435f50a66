"""How each Hugging Face protein-model family turns a sequence into tokens (one registry entry per family).

Conventions, from each model's own card / code:

* ``esm`` (``EsmModel``: facebook/esm2_*): the plain sequence; the tokenizer adds ``<cls>`` and ``<eos>``.
  Letters outside the vocabulary become ``X``.
* ``protbert`` (``BertModel``: Rostlab/prot_bert): residues separated by spaces, rare residues U, Z, O, B mapped to
  X (``re.sub(r"[UZOB]", "X", seq)`` in the model card); ``[CLS]`` ... ``[SEP]`` added.
* ``prot_t5`` (``T5EncoderModel``: Rostlab/prot_t5_xl_*): as ProtBert (space separated, UZOB -> X, the
  sentencepiece pieces are ``"▁A"`` ...); ``</s>`` appended (ProtTrans ``prott5_embedder.py``).
* ``ankh`` (``T5EncoderModel``: ElnaggarLab/ankh-*): the residues as a list of characters with
  ``is_split_into_words=True``, ``</s>`` appended (``ankh/extract.py``); no residue remapping.

Whatever the family, rows are kept only where the tokenizer says "not a special token" and their count must equal
the residue count (checked on every batch), so embeddings always align with residues.
"""
from __future__ import annotations

import re
from typing import ClassVar

from pa_geo.errors import ConfigError
from pa_geo.registry import Registry


class HFFamily:
    """Tokenisation rules of one family; subclasses set the class attributes."""

    name: ClassVar[str] = ""
    model_type: ClassVar[str] = ""  # transformers config.model_type
    model_class: ClassVar[str] = ""  # transformers class holding the encoder
    rare_to_x: ClassVar[bool] = False  # U, Z, O, B -> X before tokenising (ProtTrans convention)
    space_separated: ClassVar[bool] = False  # "M K T ..." instead of "MKT..."
    split_words: ClassVar[bool] = False  # pass list(seq) with is_split_into_words=True
    residue_token_prefix: ClassVar[str] = ""  # how one residue looks in the vocabulary ("▁" for sentencepiece)
    position_specials: ClassVar[int] = 0  # special tokens that take absolute positions (BOS + EOS)

    @classmethod
    def matches(cls, model_type: str, vocab: dict[str, int]) -> bool:
        """Whether a checkpoint of ``model_type`` with tokenizer ``vocab`` belongs to this family."""
        return model_type == cls.model_type

    @classmethod
    def clean(cls, seq: str, vocab: dict[str, int]) -> str:
        """Upper-case ``seq`` with rare residues remapped (when the family does) and letters missing from the
        vocabulary replaced by X (unknown tokens would be special tokens and break row alignment)."""
        seq = seq.upper()
        if cls.rare_to_x:
            seq = re.sub(r"[UZOB]", "X", seq)
        known = {c for c in set(seq) if cls.residue_token_prefix + c in vocab}
        return "".join(c if c in known else "X" for c in seq)

    @classmethod
    def text(cls, seq: str) -> str | list[str]:
        """Tokenizer input for a cleaned sequence."""
        if cls.split_words:
            return list(seq)
        return " ".join(seq) if cls.space_separated else seq

    @classmethod
    def max_residues(cls, config) -> int | None:
        """Longest chain one forward takes (absolute position embeddings), None for relative positions."""
        limit = getattr(config, "max_position_embeddings", None)
        return None if limit is None else int(limit) - cls.position_specials


FAMILIES: Registry[type[HFFamily]] = Registry("Hugging Face model family", "Hugging Face model families")


@FAMILIES.decorator("esm")
class EsmFamily(HFFamily):
    name, model_type, model_class, position_specials = "esm", "esm", "EsmModel", 2


@FAMILIES.decorator("protbert")
class ProtBertFamily(HFFamily):
    name, model_type, model_class, position_specials = "protbert", "bert", "BertModel", 2
    rare_to_x = space_separated = True


@FAMILIES.decorator("prot_t5")
class ProtT5Family(HFFamily):
    name, model_type, model_class = "prot_t5", "t5", "T5EncoderModel"
    rare_to_x = space_separated = True
    residue_token_prefix = "\u2581"

    @classmethod
    def matches(cls, model_type: str, vocab: dict[str, int]) -> bool:
        return model_type == "t5" and "\u2581A" in vocab

    @classmethod
    def max_residues(cls, config) -> int | None:
        return None  # relative position buckets: no hard limit


@FAMILIES.decorator("ankh")
class AnkhFamily(ProtT5Family):
    name, rare_to_x, space_separated, split_words, residue_token_prefix = "ankh", False, False, True, ""

    @classmethod
    def matches(cls, model_type: str, vocab: dict[str, int]) -> bool:
        return model_type == "t5" and "A" in vocab and "\u2581A" not in vocab


def detect_family(model_type: str, vocab: dict[str, int], source: str) -> type[HFFamily]:
    """The family whose :meth:`HFFamily.matches` accepts this checkpoint; :class:`ConfigError` (one line) if
    none does."""
    for name in FAMILIES.names():
        fam = FAMILIES.get(name)
        if fam.matches(model_type, vocab):
            return fam
    raise ConfigError(f"{source}: model_type {model_type!r} with this tokenizer is not a supported protein model "
                      f"family ({', '.join(FAMILIES.names())}); pass family= to force one")
