"""docs/status.png: the running demo's status page as headless Chromium draws it.

Run ``make demo`` in another shell first and give its CronJobs a few minutes (``report``
fails every minute); then ``make status-picture``. ``--out`` writes elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from demo.run import PORT
from tests.cluster import browser

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Screenshot the status page of the demo's exporter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "status.png")
    parser.add_argument("--url", default=f"http://127.0.0.1:{PORT}/")
    args = parser.parse_args()
    browser.screenshot(args.url, args.out, width=1500, height=620)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
