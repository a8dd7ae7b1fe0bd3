"""Resolving the JVM services' jars from Maven Central with ``mvn``.

The POMs live in the repository's ``infra/`` folder. Jars are copied once into the data
directory; a stamp file records which POM and version produced them, so a warm ``up``
skips Maven entirely. Maven's own cache (``~/.m2``) makes a re-resolution after a
version change cheap.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from courier.devstack.config import DEBEZIUM_VERSION, StackConfig
from courier.devstack.processes import StackError

Progress = Callable[[str], None]


def infra_dir() -> Path:
    """The ``infra/`` folder: the checkout's, or the copy shipped inside the wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "infra", here.parent / "infra"):
        if (candidate / "kafka" / "pom.xml").exists():
            return candidate
    raise StackError("cannot find the infra/ folder with the Maven POMs of the local stack")


def ensure_kafka_jars(config: StackConfig, progress: Progress) -> Path:
    """Kafka broker + Connect runtime jars for ``config.kafka_version``; returns the lib dir."""
    pom = infra_dir() / "kafka" / "pom.xml"
    target = config.kafka_lib_dir
    _resolve(pom, target, {"kafka.version": config.kafka_version}, "Kafka", progress)
    return target


def ensure_debezium_plugin(config: StackConfig, progress: Progress) -> Path:
    """The Debezium Postgres connector as a Connect plugin; returns the ``plugin.path`` dir."""
    pom = infra_dir() / "debezium" / "pom.xml"
    plugins = config.connect_plugins_dir
    target = plugins / "debezium-connector-postgres"
    _resolve(pom, target, {"debezium.version": DEBEZIUM_VERSION}, "Debezium", progress)
    return plugins


def jar_size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.jar")) if folder.exists() else 0


def _resolve(
    pom: Path, target: Path, properties: dict[str, str], what: str, progress: Progress
) -> None:
    stamp = target / ".resolved"
    fingerprint = _fingerprint(pom, properties)
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn (Apache Maven) is not installed; it resolves Kafka's jars")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    argv = [
        mvn,
        "-B",
        "-s",
        str(pom.parent.parent / "settings.xml"),
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
        *(f"-D{key}={value}" for key, value in properties.items()),
    ]
    progress(f"{what}: resolving jars from Maven Central")
    downloaded = 0
    tail: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-30:], line.rstrip()]
            if "Downloaded from" in line:
                downloaded += 1
                progress(f"{what}: downloaded {downloaded} artifacts from Maven Central")
    if proc.returncode != 0:
        detail = "\n  ".join(t for t in tail if "ERROR" in t) or "\n  ".join(tail[-10:])
        raise StackError(f"{what}: mvn failed to resolve the jars:\n  {detail}")
    for archive in staging.glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        archive.unlink()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    stamp.write_text(fingerprint)
    size_mb = jar_size_bytes(target) / 1e6
    progress(f"{what}: {len(list(target.glob('*.jar')))} jars, {size_mb:.0f} MB")


def _fingerprint(pom: Path, properties: dict[str, str]) -> str:
    digest = hashlib.sha256(pom.read_bytes())
    for key, value in sorted(properties.items()):
        digest.update(f"{key}={value}".encode())
    return digest.hexdigest()
