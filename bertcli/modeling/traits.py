"""What an encoder family can do, read once from its config (and tokenizer): the one place that
knows how BERT, DistilBERT, RoBERTa, XLM-R, DeBERTa, ELECTRA, ALBERT and ModernBERT differ.

Every other module asks a `ModelTraits` (or `TokenizerTraits`) instead of comparing model types:
which config keys hold the dropouts, whether segment ids exist, how many positions are really
usable, whether attention runs fused, whether words need a leading space to tokenize as they do
inside a sentence.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any

from bertcli.console import console, is_debug

# Config keys holding each kind of dropout, in the spellings the families use. A family sets
# whichever of them its config has: BERT-style (`attention_probs_dropout_prob`), DistilBERT and
# ModernBERT (`attention_dropout`), ...
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")
HIDDEN_DROPOUT_KEYS = ("hidden_dropout_prob", "dropout", "mlp_dropout")
CLASSIFIER_DROPOUT_KEYS = (
    "classifier_dropout",  # BERT, RoBERTa, XLM-R, ELECTRA, ModernBERT
    "classifier_dropout_prob",  # ALBERT
    "seq_classif_dropout",  # DistilBERT sequence classification
    "qa_dropout",  # DistilBERT QA
)
# Keys a model reads with getattr(config, key, None) although its config class never sets them.
OPTIONAL_CLASSIFIER_KEYS = {"deberta-v2": "cls_dropout", "deberta": "cls_dropout"}
# Graphs onnxruntime's "bert" transformer optimizer fuses (attention, LayerNorm, GELU).
ONNX_BERT_GRAPHS = ("bert", "roberta", "xlm-roberta", "electra")


def debug(message: str) -> None:
    if is_debug():
        console.print(f"[dim]debug:[/] {message}", soft_wrap=True)


@dataclass(frozen=True)
class ModelTraits:
    """Capabilities of one encoder, read from its config and task-model class."""

    model_type: str
    attention_dropout_key: str | None  # None: the family has no attention-probability dropout
    hidden_dropout_key: str | None
    classifier_dropout_keys: tuple[str, ...]  # every key a task head's dropout is read from
    segments: int  # type_vocab_size: below 2 there is no second segment id to give
    takes_token_type_ids: bool  # the model has segment embeddings and its forward accepts them
    position_offset: int  # RoBERTa-style models number positions from padding_idx + 1
    max_length: int | None  # tokens a window can really hold (positions minus the offset)
    native_pooling: bool  # the task model pools itself (ModernBERT `classifier_pooling`)
    local_attention: int | None  # ModernBERT: sliding-window size of its local layers
    fused_attention: bool  # the model runs torch's scaled_dot_product_attention
    onnx_fusable: bool  # onnxruntime's BERT optimizer understands the exported graph

    @classmethod
    def from_config(cls, config: Any, model_class: Any = None) -> ModelTraits:
        keys = set(config.to_dict())
        first = lambda names: next((k for k in names if k in keys), None)  # noqa: E731
        classifier = tuple(k for k in CLASSIFIER_DROPOUT_KEYS if k in keys)
        optional = OPTIONAL_CLASSIFIER_KEYS.get(config.model_type)
        if optional:
            classifier += (optional,)
        segments = int(getattr(config, "type_vocab_size", 0) or 0)
        takes = segments >= 2 and (model_class is None or _accepts(model_class, "token_type_ids"))
        offset = _position_offset(config)
        positions = getattr(config, "max_position_embeddings", None)
        return cls(
            model_type=config.model_type,
            attention_dropout_key=first(ATTENTION_DROPOUT_KEYS),
            hidden_dropout_key=first(HIDDEN_DROPOUT_KEYS),
            classifier_dropout_keys=classifier,
            segments=segments,
            takes_token_type_ids=takes,
            position_offset=offset,
            max_length=int(positions) - offset if positions else None,
            native_pooling="classifier_pooling" in keys,
            local_attention=getattr(config, "local_attention", None),
            fused_attention=bool(getattr(model_class, "_supports_sdpa", True)),
            onnx_fusable=config.model_type in ONNX_BERT_GRAPHS,
        )

    def overrides(
        self, *, dropout: float | None, attention_dropout: float | None, pooling: str
    ) -> dict[str, Any]:
        """Config values to load the model with, under this family's own key names."""
        extra: dict[str, Any] = {}
        if dropout is not None:
            extra.update(dict.fromkeys(self.classifier_dropout_keys, dropout))
        if attention_dropout is not None:
            if self.attention_dropout_key is None:
                debug(f"{self.model_type}: no attention dropout to set; skipped")
            else:
                # Dropout on the (batch, heads, seq, seq) attention probabilities forces the
                # unfused attention path; without it scaled_dot_product_attention runs fused.
                extra[self.attention_dropout_key] = attention_dropout
        if self.native_pooling:
            extra["classifier_pooling"] = pooling
        return extra

    def report(self) -> None:
        """Debug lines for the speed defaults this family cannot take."""
        if not self.fused_attention:
            debug(f"{self.model_type}: no fused attention (SDPA) kernel; runs eager attention")
        if self.attention_dropout_key is None:
            debug(f"{self.model_type}: no attention dropout setting; attention_dropout skipped")

    def head_dropout(self, config: Any) -> float:
        """The dropout a bertcli-made head uses: the classifier's, else the hidden layers'."""
        for key in (*self.classifier_dropout_keys, self.hidden_dropout_key):
            value = getattr(config, key, None) if key else None
            if value is not None:
                return float(value)
        return 0.1


def _accepts(model_class: Any, name: str) -> bool:
    return name in inspect.signature(model_class.forward).parameters


def _position_offset(config: Any) -> int:
    """RoBERTa-style embeddings start position ids after the padding index (so 514 -> 512).

    Read from the embeddings class: it builds position ids with `padding_idx + 1` offsets.
    """
    import importlib

    module_name = type(config).__module__.replace("configuration_", "modeling_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return 0
    for name, value in vars(module).items():
        if name.endswith("Embeddings") and hasattr(value, "create_position_ids_from_input_ids"):
            pad = getattr(config, "pad_token_id", None)
            return int(pad) + 1 if pad is not None else 0
    return 0


def model_traits(model: Any) -> ModelTraits:
    """Traits of a loaded transformers model (a task model or a bare encoder)."""
    return ModelTraits.from_config(model.config, type(model))


@dataclass(frozen=True)
class TokenizerTraits:
    """Tokenizer habits that windowing must follow."""

    word_prefix: str  # prepended to a word tokenized alone so it reads as it does mid-sentence


@cache
def tokenizer_traits(tokenizer: Any) -> TokenizerTraits:
    """Probe the tokenizer: byte-level BPE without `add_prefix_space` tokenizes "a b" as
    `a Ġb` but "b" alone as `b`; such words need a leading space to read as in running text."""

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    whole = ids("a b")
    needs_space = whole != ids("a") + ids("b") and whole == ids("a") + ids(" b")
    return TokenizerTraits(word_prefix=" " if needs_space else "")
