"""bertcli: fine-tune BERT-family encoders from recipes and serve them in shell pipelines."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The library API is imported lazily so that `bertcli --help` never pays for torch/transformers.
_API = {
    "finetune": "bertcli.finetune",
    "evaluate_model": "bertcli.evaluation",
    "Predictor": "bertcli.infer",
    "open_predictor": "bertcli.predictor",
    "export_model": "bertcli.export",
    "load_config": "bertcli.config",
    "RunConfig": "bertcli.config",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'bertcli' has no attribute {name!r}")
