"""The attention page and report.html in headless Chromium: they render, say nothing on the
console, fetch nothing, and the attention page answers a click on a token.

Needs Debian's chromium (`apt-get install chromium`); skipped with the reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Browser, find_chromium

from bertcli.attention import explain
from bertcli.console import configure

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get install chromium, or set BERTCLI_CHROMIUM)",
)


@pytest.fixture
def browser():
    with Browser(CHROMIUM) as opened:  # type: ignore[arg-type]
        yield opened


def only_local(browser: Browser) -> None:
    fetched = [url for url in browser.requests() if not url.startswith(("file:", "data:"))]
    assert fetched == [], "the page fetched something"


@pytest.fixture(scope="module")
def attention_page(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    configure(quiet=True)
    out = tmp_path_factory.mktemp("attention") / "attention.html"
    explain(str(tiny_model_dir), [("this movie was great", "the plot was boring")], html=out)
    configure(quiet=False)
    return out


def test_attention_page_renders_and_a_token_click_isolates_its_lines(
    browser: Browser, attention_page: Path, tmp_path: Path
) -> None:
    browser.open(attention_page)
    shot = browser.screenshot(tmp_path / "attention.png")
    assert shot.stat().st_size > 10_000
    assert browser.console_errors() == []
    only_local(browser)
    before = int(browser.eval("document.body.dataset.lines"))
    assert before > 0
    assert browser.eval("document.querySelectorAll('.cell canvas').length") == 4  # 2 x 2 grid
    browser.click('#lines text.tok[data-side="left"][data-i="2"]')
    after = int(browser.eval("document.body.dataset.lines"))
    assert 0 < after < before
    drawn = browser.eval("[...document.querySelectorAll('#linegroup line')].map(l => l.dataset.q)")
    assert set(drawn) == {"2"}  # only the clicked token's lines
    browser.click('#lines text.tok[data-side="left"][data-i="2"]')  # again: all lines back
    assert int(browser.eval("document.body.dataset.lines")) == before
    assert browser.console_errors() == []


def test_a_model_view_click_opens_that_head(browser: Browser, attention_page: Path) -> None:
    browser.open(attention_page)
    browser.click('.cell[data-l="1"][data-h="1"]')
    assert browser.eval("document.getElementById('layer').value") == "1"
    heads = browser.eval(
        "[...new Set([...document.querySelectorAll('#linegroup line')].map(l => l.dataset.h))]"
    )
    assert heads == ["1"]
    assert browser.eval("document.querySelectorAll('.cell.cur').length") == 1
    browser.click(".chip:nth-child(1)")  # head 0 back on
    assert browser.eval("document.querySelectorAll('.chip.off').length") == 0
    assert browser.console_errors() == []


def test_report_html_renders_with_its_pictures(
    browser: Browser, trained_model_dir: Path, tmp_path: Path
) -> None:
    browser.open(trained_model_dir / "report.html")
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
    assert browser.console_errors() == []
    only_local(browser)
    sizes = browser.eval("[...document.images].map(i => i.complete && i.naturalWidth)")
    assert len(sizes) >= 3 and all(sizes)  # curves, validation, confusion matrix
    assert browser.eval("document.querySelectorAll('table tr').length") > 2
