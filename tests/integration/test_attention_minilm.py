"""The embedded MiniLM on the sentence pair of "Deconstructing BERT": its heads show the
delimiter pattern and the previous/next-token patterns, offline, through the real CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from browser import Browser, find_chromium
from conftest import run_bertcli as bertcli

pytestmark = pytest.mark.integration

TEXT, PAIR = "I went to the store.", "At the store, I bought fresh strawberries."


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path, float]:
    out = tmp_path_factory.mktemp("minilm-attention")
    started = time.perf_counter()
    proc = bertcli(
        "attention", "--model", "minilm", TEXT, PAIR,
        "--output", str(out / "attention.html"), "--png", str(out / "grid.png"),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert "attention patterns of minilm" in proc.stderr
    return json.loads(proc.stdout), out / "attention.html", out / "grid.png", seconds


def test_every_head_is_named_and_the_article_patterns_show(run) -> None:
    result, _, _, seconds = run
    heads = result["heads"]
    assert len(heads) == 6 * 12  # MiniLM-L6-H384: 6 layers x 12 heads
    assert {(h["layer"], h["head"]) for h in heads} == {
        (layer, head) for layer in range(6) for head in range(12)
    }
    patterns = {h["pattern"] for h in heads}
    assert "delimiter" in patterns
    assert patterns & {"previous", "next"}
    best = {p: max(h["score"] for h in heads if h["pattern"] == p) for p in patterns}
    assert max(best.get("previous", 0), best.get("next", 0)) > 0.6
    assert seconds < 120  # generous for a busy CI box; about 5-10 s on a laptop


def test_the_page_and_picture_are_written(run) -> None:
    _, page, grid, _ = run
    assert grid.read_bytes()[:4] == b"\x89PNG"
    html = page.read_text()
    assert "##berries" in html and '"segments"' in html


@pytest.mark.skipif(
    find_chromium() is None, reason="chromium not installed (apt-get install chromium)"
)
def test_the_minilm_page_renders_in_chromium(run, tmp_path: Path) -> None:
    _, page, _, _ = run
    with Browser(find_chromium()) as browser:  # type: ignore[arg-type]
        browser.open(page)
        browser.screenshot(tmp_path / "minilm-attention.png")
        assert browser.console_errors() == []
        assert browser.eval("document.querySelectorAll('.cell canvas').length") == 72
        before = int(browser.eval("document.body.dataset.lines"))
        browser.click('#lines text.tok[data-side="right"][data-i="16"]')  # ##berries
        assert 0 < int(browser.eval("document.body.dataset.lines")) < before
