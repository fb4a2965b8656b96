"""A real browser for the tests and the pictures: Debian's Chromium, headless.

:func:`render` returns the DOM after the page ran (and what the browser complained about,
e.g. a Content-Security-Policy it had to enforce); :func:`screenshot` saves a PNG. The
flags keep Chromium from reaching for Google's hosts, which this network refuses.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("chromium")
    if not path:
        raise FileNotFoundError("chromium not found: install the Debian package 'chromium'")
    with tempfile.TemporaryDirectory(prefix="kbe-chromium-") as profile:
        return subprocess.run(
            [path, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def render(url: str) -> tuple[str, str]:
    """The rendered DOM of ``url``, and the browser's console and error output."""
    done = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
    return done.stdout, done.stderr


def screenshot(url: str, path: Path, width: int = 1400, height: int = 900) -> None:
    """A PNG of ``url`` as a ``width`` x ``height`` window shows it."""
    _chromium(f"--window-size={width},{height}", f"--screenshot={path}", url)
    assert path.exists() and path.stat().st_size > 0, f"no screenshot of {url}"
