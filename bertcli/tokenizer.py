"""A torch-free tokenizer: the saved `tokenizer.json` run by the `tokenizers` library directly.

It answers the few calls `make_windows` makes with the same results as a transformers fast
tokenizer, so the ONNX runtime can build identical windows without importing transformers (which
imports torch).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertcli.errors import ModelError


class Encoded(dict):
    """Tokenizer output as a dict, plus `sequence_ids(i)` as a transformers BatchEncoding has."""

    def __init__(self, data: dict[str, Any], encodings: list[Any]) -> None:
        super().__init__(data)
        self._encodings = encodings

    def sequence_ids(self, index: int) -> list[int | None]:
        return self._encodings[index].sequence_ids


class RustTokenizer:
    def __init__(self, model_dir: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(model_dir) / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"{model_dir}: tokenizer.json is missing")
        try:
            self._tk = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises bare Exceptions for malformed files
            raise ModelError(f"{path}: corrupt tokenizer file ({exc})") from None
        self._tk.no_padding()
        self._tk.no_truncation()
        config_path = Path(model_dir) / "tokenizer_config.json"
        try:
            config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        except (OSError, ValueError) as exc:
            raise ModelError(f"{config_path}: corrupt JSON ({exc})") from None
        self.pad_token_id = self._special_id(config, "pad_token", "[PAD]")
        self.unk_token_id = self._special_id(config, "unk_token", "[UNK]")

    def _special_id(self, config: dict[str, Any], key: str, default: str) -> int | None:
        token = config.get(key, default)
        token = token.get("content") if isinstance(token, dict) else token
        return self._tk.token_to_id(token) if token else None

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tk.num_special_tokens_to_add(pair)

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        truncation: bool | str = False,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        return_offsets_mapping: bool = False,
        **_: Any,
    ) -> dict[str, Any]:
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        pairs = None if text_pair is None else ([text_pair] if single else list(text_pair))
        if truncation and max_length:
            strategy = (
                truncation if truncation in ("only_first", "only_second") else "longest_first"
            )
            self._tk.enable_truncation(max_length, stride=stride, strategy=strategy)
        else:
            self._tk.no_truncation()
        inputs = list(zip(texts, pairs, strict=True)) if pairs is not None else texts
        encodings = self._tk.encode_batch(inputs, add_special_tokens=add_special_tokens)
        self._tk.no_truncation()
        out: dict[str, Any] = {"input_ids": [], "token_type_ids": []}
        if return_offsets_mapping:
            out["offset_mapping"] = []
        mapping, flat = [], []
        for index, encoding in enumerate(encodings):
            parts = [encoding, *encoding.overflowing] if return_overflowing_tokens else [encoding]
            for part in parts:
                out["input_ids"].append(part.ids)
                out["token_type_ids"].append(part.type_ids)
                if return_offsets_mapping:
                    out["offset_mapping"].append(part.offsets)
                mapping.append(index)
                flat.append(part)
        if return_overflowing_tokens:
            out["overflow_to_sample_mapping"] = mapping
        if single and not return_overflowing_tokens:
            out = {k: v[0] for k, v in out.items()}
        return Encoded(out, flat)
