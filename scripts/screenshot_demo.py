"""Save a screenshot of the demo with an example note extracted (README shows docs/demo.png).

    .venv/bin/python scripts/screenshot_demo.py [--model runs/quickstart/model] [--out docs/demo.png]

Starts the app on a free 127.0.0.1 port, opens it in Debian's chromium (headless, through
Playwright; never `playwright install`), pastes the first Spanish example note, clicks Extract
and saves the whole page.
"""

from __future__ import annotations

import argparse
import shutil
import socket
from pathlib import Path

from clinx_hub.demo import DEFAULT_MODEL, build_demo, launch_settings, warm_up
from clinx_hub.synthetic import example_notes

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model or ensemble folder (default: the quickstart's)")
    parser.add_argument("--out", default="docs/demo.png")
    parser.add_argument("--language", default="es", choices=["es", "en"])
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get update && apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    demo = build_demo([args.model])
    warm_up(demo)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo.launch(**launch_settings(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#model-info").get_by_text("labels").wait_for()
            page.locator("#note textarea").fill(example_notes(args.language)[0])
            page.locator("#extract").click()
            page.locator("#status").get_by_text("document").wait_for()
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
