"""Debian's Chromium and chromedriver for the browser test, installed when missing.

As :mod:`courier.devstack.postgres` does for PostgreSQL: ``apt-get install`` of Debian's
packages (``chromium``, ``chromium-driver``; their versions always match), as root, or
through ``sudo -n`` when not root. No browser is downloaded from anywhere else: Selenium is
given both paths, so Selenium Manager never runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("chromium", "chromium-driver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--window-size=1400,1000")  # fmt: skip


class ChromiumUnavailable(RuntimeError):
    """Chromium is missing and could not be installed; the message says why."""


@dataclass(frozen=True)
class Chromium:
    browser: Path
    driver: Path


def find_chromium() -> Chromium | None:
    """Debian's chromium and chromedriver, if both are installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if browser is None or driver is None:
        return None
    return Chromium(Path(browser), Path(driver))


def _apt(args: list[str]) -> subprocess.CompletedProcess[str]:
    argv = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *args]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ChromiumUnavailable(
                "chromium is missing and we are neither root nor have sudo: "
                f"run `sudo apt-get install -y {' '.join(PACKAGES)}` once"
            )
        argv = ["sudo", "-n", *argv]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def ensure_chromium(progress: bool = True) -> Chromium:
    """Chromium and chromedriver, installing Debian's packages first if needed."""
    found = find_chromium()
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable("chromium is missing and there is no apt-get to install it")
    install = ["install", "-y", "--no-install-recommends", *PACKAGES]
    if progress:
        print(f"[browser test] apt-get install {' '.join(PACKAGES)}", flush=True)
    result = _apt(install)
    if result.returncode != 0:  # stale or missing package lists: update once, then again
        update = _apt(["update"])
        if update.returncode == 0:
            result = _apt(install)
    if result.returncode != 0:
        detail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise ChromiumUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {detail}")
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailable("apt-get installed chromium but chromium/chromedriver is missing")
    return found
