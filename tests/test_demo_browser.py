"""The demo in a real browser: Debian's chromium, driven headless by Playwright.

Skipped (with the reason) where chromium or Playwright is missing; CI installs chromium
(``.ci/run``). Playwright never downloads a browser here: it is pointed at ``/usr/bin/chromium``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the demo needs gradio: pip install -e '.[demo]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright: pip install -e '.[dev]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: apt-get update && apt-get install -y chromium (.ci/run does this)"
)

from test_demo import save_demo_model, serve_demo  # noqa: E402

from clinx_hub.demo import build_demo  # noqa: E402
from clinx_hub.ensemble import load_extractor  # noqa: E402
from clinx_hub.outputs import deidentify  # noqa: E402
from clinx_hub.synthetic import SYNTHETIC_LABELS, example_notes  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory, tiny_backbone_dir: Path):
    model = save_demo_model(tmp_path_factory.mktemp("browser-model"), tiny_backbone_dir)
    demo = build_demo({"tiny": str(model)})
    url = serve_demo(demo)
    yield url, model
    demo.close()


def test_a_person_pastes_a_note_and_sees_the_spans(demo_url, tmp_path: Path) -> None:
    url, model = demo_url
    note = example_notes("es")[0]
    expected = load_extractor(model).predict([note])[0]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.locator("#model-info").get_by_text("de-identification").wait_for()
            page.locator("#note textarea").fill(note)
            page.locator("#extract").click()
            page.locator("#status").get_by_text(f"{len(expected)} spans in 1 document").wait_for()

            highlighted = page.locator("#spans .token.highlighted")
            assert highlighted.count() == len({(s.start, s.end) for s in expected}) > 0
            assert highlighted.first.inner_text().strip() == expected[0].text.strip()
            legend = page.locator('#spans [data-testid="highlighted-text:category-legend"]').inner_text()
            assert all(label in legend for label in SYNTHETIC_LABELS)
            grid = page.locator("#table [role=grid]")
            assert grid.get_attribute("aria-rowcount") == str(len(expected) + 1)  # header + one row per span
            assert expected[0].label in grid.inner_text()
            assert page.locator("#deid textarea").input_value() == deidentify(note, expected)
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000
