"""Headless Chromium (Debian's `chromium`, installed by `make setup`) taking screenshots of pages
with the network cut off: no proxy answers, no host name resolves. What a page shows this way
is what it shows on a machine without a network.

    python tests/browser.py PAGE.html [PAGE.html ...] --out DIR   # DIR/<page name>.png each
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

__all__ = ["chromium_binary", "png_size", "screenshot"]

OFFLINE = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, out: Path, width: int = 1000, height: int = 1400) -> Path:
    """A PNG of `page` as headless Chromium renders it, offline."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed: `make setup` installs it as root")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                f"--user-data-dir={profile}", *OFFLINE, f"--window-size={width},{height}",
                f"--screenshot={out}", page.resolve().as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return out


def png_size(png: Path) -> tuple[int, int]:
    """(width, height) from the PNG's header chunk."""
    head = png.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{png}: not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for page in args.pages:
        print(screenshot(page, args.out / f"{page.stem}.png"))
