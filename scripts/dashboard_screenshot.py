#!/usr/bin/env python3
"""Make ``docs/dashboard.png``, the README's picture of the local dashboard.

    .venv/bin/python scripts/dashboard_screenshot.py [--out docs/dashboard.png]

Replays the bundled demo (``castlewatch replay``) into a temporary directory, opens the
``dashboard.html`` it writes in headless Chromium (Debian's ``chromium`` package, driven by
playwright from the test extra) and saves the top of the page, ``--height`` pixels of a
``--width``-pixel-wide window. Exit status 0, or 1 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1040)
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Error: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "castlewatch", "replay"], cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"Error: castlewatch replay failed:\n{done.stderr}", file=sys.stderr)
            return 1
        page_path = Path(tmp) / "castlewatch-out" / "dashboard.html"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(page_path.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
            page.wait_for_timeout(500)  # plotly.js's last relayout
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"Wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
