"""Builders of hostile and broken folders, for tests that bertcli never runs or trusts them.

Every builder writes into a folder the test owns (tmp) and plants a payload whose only effect is
to create `marker`: a test passes when the marker never appears.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path


class _Payload:
    """Unpickling this object calls open(marker, "w"): proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_payload(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


def remote_code_folder(source: Path, out: Path, marker: Path, *, unknown_type: bool) -> Path:
    """A copy of model folder `source` whose config.json asks transformers to run `evil.py`
    (auto_map), which would create `marker`. With `unknown_type` the model type is one that only
    the folder's code defines, so transformers cannot load it without running that code."""
    shutil.copytree(source, out)
    config = json.loads((out / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModel": "evil.EvilModel",
        "AutoModelForSequenceClassification": "evil.EvilModel",
    }
    if unknown_type:
        config["model_type"] = "evilbert"
    (out / "config.json").write_text(json.dumps(config))
    (out / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    return out


def pickle_only_folder(source: Path, out: Path, marker: Path) -> Path:
    """A copy of `source` whose weights exist only as a pickle (which would create `marker`)."""
    shutil.copytree(source, out)
    for weights in out.glob("*.safetensors"):
        weights.unlink()
    pickle_payload(out / "pytorch_model.bin", marker)
    return out


def truncated_weights(source: Path, out: Path) -> Path:
    shutil.copytree(source, out)
    weights = out / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return out


def corrupt_file(source: Path, out: Path, name: str, text: str) -> Path:
    shutil.copytree(source, out)
    (out / name).write_text(text)
    return out


def edit_meta(source: Path, out: Path, **changes: object) -> Path:
    """A copy of a bertcli model folder whose bertcli.json has `changes` applied."""
    shutil.copytree(source, out)
    meta = json.loads((out / "bertcli.json").read_text())
    meta.update(changes)
    (out / "bertcli.json").write_text(json.dumps(meta))
    return out
