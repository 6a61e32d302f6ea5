"""The `family_model` fixture: tiny random encoders of every family, built once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from families.factories import _bpe_vocab_merges, _config, _tokenizer, _unigram_vocab


@pytest.fixture(scope="session")
def family_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`family_model("roberta")` -> a folder laid out like a hub download, built once."""
    import torch
    from transformers import AutoModel

    cache: dict[str, Any] = {}
    built: dict[str, Path] = {}

    def bpe() -> Any:
        if "bpe" not in cache:
            cache["bpe"] = _bpe_vocab_merges()
        return cache["bpe"]

    def unigram() -> Any:
        if "unigram" not in cache:
            cache["unigram"] = _unigram_vocab()
        return cache["unigram"]

    def make(family: str) -> Path:
        if family not in built:
            out = tmp_path_factory.mktemp(f"family-{family}")
            tokenizer = _tokenizer(family, bpe, unigram)
            torch.manual_seed(0)
            AutoModel.from_config(_config(family, tokenizer)).save_pretrained(out)
            tokenizer.save_pretrained(out)
            built[family] = out
        return built[family]

    return make
