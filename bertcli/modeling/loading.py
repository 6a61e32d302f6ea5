"""Loading pretrained files safely: no code from a model folder ever runs, no pickle is read.

`trust_remote_code=False` is passed explicitly everywhere (otherwise transformers may ask `[y/N]`
on stdout and read the answer from the data piped into `bertcli predict`), weights load only from
safetensors, and every way a folder can be broken becomes a one-line ModelError naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from bertcli.errors import ModelError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONVERT_HINT = (
    "convert it once, in an environment you trust: AutoModel.from_pretrained(DIR)"
    ".save_pretrained(DIR, safe_serialization=True)"
)


def check_weights(path: str | Path) -> None:
    """A local folder must hold safetensors weights; pickle-only folders are refused."""
    folder = Path(path)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ModelError(
            f"{folder}: holds only pickle weights ({', '.join(pickles)}); bertcli loads "
            "safetensors only, because unpickling a file can run code",
            CONVERT_HINT,
        )


def _broken_json(folder: Path) -> str | None:
    """The first JSON file of a folder that does not parse, with the parser's complaint."""
    if not folder.is_dir():
        return None
    for item in sorted(folder.glob("*.json")):
        try:
            json.loads(item.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return f"{item}: corrupt JSON ({exc})"
    return None


def model_error(path: str | Path, exc: BaseException, what: str = "model") -> ModelError:
    """A loading failure as one line that names the file at fault, whatever raised it."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    if type(exc).__name__ == "SafetensorError":
        weights = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
        where = ", ".join(str(w) for w in weights) or f"{path} (safetensors weights)"
        return ModelError(f"{where}: damaged or truncated ({first})", "re-save or re-download it")
    if "custom code" in str(exc) or "trust_remote_code" in str(exc):
        return ModelError(
            f"{path}: this model folder needs to run its own Python code (auto_map or an unknown "
            "model type); bertcli never runs code from a model folder",
            "use a model whose architecture transformers ships",
        )
    broken = _broken_json(Path(path))
    if broken:
        return ModelError(broken, "re-save or re-download the model folder")
    return ModelError(f"{path}: cannot load {what} ({first})")


def load_tokenizer(path: str | Path, *, local_files_only: bool = True) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(path), local_files_only=local_files_only, trust_remote_code=False
        )
    except Exception as exc:  # tokenizers raises bare Exceptions for broken tokenizer.json
        raise model_error(path, exc, "tokenizer") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{path}: bertcli needs a fast (Rust) tokenizer; none found")
    return tokenizer


def load_pretrained(
    auto_class: Any, path: str | Path, *, local_files_only: bool = True, **kwargs: Any
) -> Any:
    """`auto_class.from_pretrained` with safetensors only and no remote code."""
    check_weights(path)
    try:
        return auto_class.from_pretrained(
            str(path),
            local_files_only=local_files_only,
            trust_remote_code=False,
            use_safetensors=True,
            **kwargs,
        )
    except (OSError, ValueError, SafetensorError) as exc:  # JSON errors are ValueErrors
        raise model_error(path, exc) from None
