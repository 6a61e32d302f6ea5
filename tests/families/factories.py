"""Tiny random models of every supported encoder family, each saved as a local folder with a
real tokenizer of its family's kind (WordPiece, byte-level BPE or sentencepiece-style Unigram)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[1] / "assets"
HIDDEN = 64
MAX_POSITIONS = 130  # 128 usable positions; RoBERTa-style models add 2 (pad offset)

CORPUS_TEXT = (
    "alice bob carol dave erin smith jones brown paris rome oslo lima berlin "
    "where does live lives in the film was good and music great bad awful plot movie "
    "story acting ending script this is a really very wonderful terrible boring dull lovely "
    "amazing horrible excellent we saw today they went to again visited liked it where of "
    "i think just , . ! ? yes no question answer text Angela Merkel Paris Berlin"
)


def corpus() -> list[str]:
    """Sentences for tokenizer training: every test word, alone and in context."""
    import random

    rng = random.Random(0)
    words = CORPUS_TEXT.split()
    lines = [" ".join(rng.sample(words, 8)) for _ in range(400)]
    return lines + [CORPUS_TEXT] * 5


def _bpe_vocab_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        corpus(),
        vocab_size=400,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    import json

    model = json.loads(trainer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def _unigram_vocab() -> list[tuple[str, float]]:
    import json

    from tokenizers import SentencePieceUnigramTokenizer

    trainer = SentencePieceUnigramTokenizer()
    trainer.train_from_iterator(
        corpus(), vocab_size=300, special_tokens=["<pad>", "<unk>"], unk_token="<unk>"
    )
    return [tuple(v) for v in json.loads(trainer.to_str())["model"]["vocab"]]  # type: ignore[misc]


def _wordpiece(cls: Any) -> Any:
    return cls(vocab=str(ASSETS / "vocab.txt"), do_lower_case=True)


def _modernbert_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Any:
    """ModernBERT's kind: byte-level BPE without trimmed offsets, [CLS]/[SEP] specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(vocab)
    for token in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"):
        vocab.setdefault(token, len(vocab))
    tk = Tokenizer(models.BPE(vocab, merges, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        model_input_names=["input_ids", "attention_mask"],
    )


def _config(family: str, tokenizer: Any) -> Any:
    import transformers as tf

    common = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
    }
    layers = {"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 96}
    bert_like = {**common, **layers, "hidden_size": HIDDEN, "max_position_embeddings": 128}
    if family in ("bert", "electra"):
        cls = tf.BertConfig if family == "bert" else tf.ElectraConfig
        extra = {"embedding_size": 32} if family == "electra" else {}
        return cls(**bert_like, **extra)
    if family == "albert":
        return tf.AlbertConfig(**bert_like, embedding_size=32)
    if family == "distilbert":
        return tf.DistilBertConfig(
            **common, dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=96, max_position_embeddings=128
        )
    if family in ("roberta", "xlm-roberta"):
        cls = tf.RobertaConfig if family == "roberta" else tf.XLMRobertaConfig
        return cls(
            **{**bert_like, "max_position_embeddings": MAX_POSITIONS},
            type_vocab_size=1,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
    if family == "deberta-v2":  # the original v2 layout: absolute positions, two segments
        return tf.DebertaV2Config(**bert_like, type_vocab_size=2, relative_attention=False)
    if family == "deberta-v3":  # relative attention only, no segment embeddings
        return tf.DebertaV2Config(
            **bert_like,
            type_vocab_size=0,
            relative_attention=True,
            position_biased_input=False,
            pos_att_type=["p2c", "c2p"],
            max_relative_positions=-1,
            position_buckets=32,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
        )
    if family == "modernbert":
        return tf.ModernBertConfig(
            **common,
            hidden_size=HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=96,
            max_position_embeddings=512,
            global_attn_every_n_layers=2,
            local_attention=16,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
    raise ValueError(family)


def _tokenizer(family: str, bpe: Callable[[], Any], unigram: Callable[[], Any]) -> Any:
    import transformers as tf

    if family in ("bert", "distilbert", "electra"):
        return _wordpiece(tf.BertTokenizer)
    if family == "roberta":
        return tf.RobertaTokenizer(vocab=bpe()[0], merges=bpe()[1])
    if family == "modernbert":
        return _modernbert_tokenizer(*bpe())
    pieces = unigram()
    if family == "xlm-roberta":
        specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
        rest = [p for p in pieces if p[0] not in {"<pad>", "<unk>"}]
        return tf.XLMRobertaTokenizer(vocab=[*specials, *rest, ("<mask>", 0.0)])
    specials = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), ("[MASK]", 0.0)]
    rest = [p for p in pieces if p[0] not in {"<pad>", "<unk>"}]
    if family == "albert":
        albert = [("<pad>", 0.0), ("<unk>", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[MASK]", 0.0)]
        return tf.AlbertTokenizer(vocab=[*albert, *rest])
    return tf.DebertaV2Tokenizer(vocab=[*specials, *rest], unk_id=3)


FAMILIES = (
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "deberta-v2",
    "deberta-v3",
    "electra",
    "albert",
    "modernbert",
)
