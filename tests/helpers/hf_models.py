"""Tiny random Hugging Face protein models saved with ``save_pretrained``, one per family.

Vocabularies follow the real checkpoints: ESM-2's 33 tokens (fair-esm's order), ProtBert's 30
(``[PAD] [UNK] [CLS] [SEP] [MASK]`` + 25 letters), ProtT5's sentencepiece pieces ``"▁A"`` with ``<pad> </s> <unk>``
first, and an Ankh-style character vocabulary (``<pad> </s> <unk>`` + single letters, ``</s>`` appended).
"""
from __future__ import annotations

from pathlib import Path

import torch

RESIDUES = "LAGVESIKRDTPNQFYMHCWXBUZO"
ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]


def _save(model, tokenizer, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_hf_esm(path: Path, seed: int = 0, layers: int = 3, max_positions: int = 1026) -> Path:
    """An ``EsmModel`` (rotary, 32-d, 4 heads) with ESM-2's tokenizer; ``max_positions - 2`` residues fit."""
    from transformers import EsmConfig, EsmModel, EsmTokenizer

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    tok = EsmTokenizer(str(path / "vocab.txt"))
    cfg = EsmConfig(vocab_size=33, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=max_positions, position_embedding_type="rotary",
                    pad_token_id=1, mask_token_id=32, token_dropout=True, emb_layer_norm_before=False)
    return _save(EsmModel(cfg, add_pooling_layer=False).eval(), tok, path)


def make_tiny_protbert(path: Path, seed: int = 0, max_positions: int = 40000) -> Path:
    """A ``BertModel`` with ProtBert's vocabulary (``do_lower_case=False``)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(seed)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *RESIDUES]
    tok = BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=False)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=max_positions, pad_token_id=0)
    return _save(BertModel(cfg, add_pooling_layer=False).eval(), tok, path)


def _t5(path: Path, tok, vocab_size: int, seed: int) -> Path:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                   feed_forward_proj="relu", is_encoder_decoder=False)
    return _save(T5EncoderModel(cfg).eval(), tok, path)


def make_tiny_prot_t5(path: Path, seed: int = 0) -> Path:
    """A ``T5EncoderModel`` with a ProtT5-style sentencepiece (Unigram) vocabulary of ``"▁A"`` pieces."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + a, -1.0 - 0.01 * i) for i, a in enumerate(RESIDUES)]
    return _t5(path, T5Tokenizer(vocab=pieces, extra_ids=0), len(pieces), seed)


def make_tiny_ankh(path: Path, seed: int = 0) -> Path:
    """A ``T5EncoderModel`` with an Ankh-style character vocabulary (``</s>`` appended, no ``▁`` pieces)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>", *RESIDUES])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    return _t5(path, tok, len(vocab), seed)
