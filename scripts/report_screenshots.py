"""Screenshots of a written report at a phone's and a desktop's width, as the README shows them.

    .venv/bin/python scripts/report_screenshots.py docs/figures/paper-smollm2-135m/index.html docs/figures/report-smollm2-135m

Needs playwright and a Chromium (the system's: `apt-get install chromium`).
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

WIDTHS = (400, 1400)


def main(index: str, prefix: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(Path(index).resolve().as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=f"{prefix}-{width}px.jpg", full_page=True, type="jpeg", quality=50)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
