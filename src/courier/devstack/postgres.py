"""PostgreSQL for the local stack: Debian's server binaries, a cluster of our own.

The cluster lives in ``<data dir>/postgres`` with ``wal_level=logical``, trust auth on
loopback only, and enough WAL senders and slots for the relay, Debezium and the tests.
PostgreSQL refuses to run as root, so when we are root the cluster belongs to the
``postgres`` OS user (created by Debian's package) and we run its tools through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg2

from courier.devstack.config import DATABASE_NAME, DATABASE_USER, HOST, StackConfig
from courier.devstack.jars import Progress
from courier.devstack.processes import StackError, require_free_port, wait_until

SERVICE_USER = "postgres"
SETTINGS = {
    "listen_addresses": HOST,
    "wal_level": "logical",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
    "max_connections": "200",
    "wal_sender_timeout": "60s",
    "fsync": "off",  # a throwaway dev/test cluster: durability across OS crashes is not needed
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def find_bin_dir() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<major>/bin`` that has the server."""
    root = Path("/usr/lib/postgresql")
    if not root.exists():
        return None
    majors = sorted(
        (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    return majors[-1] / "bin" if majors else None


def ensure_installed(progress: Progress) -> Path:
    """Install Debian's ``postgresql`` package when its server binaries are missing."""
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() != 0:
        raise StackError(
            "PostgreSQL server binaries are missing and we are not root: "
            "run `sudo apt-get install -y postgresql` once, then `courier dev up` again"
        )
    if shutil.which("apt-get") is None:
        raise StackError("PostgreSQL is missing and there is no apt-get to install it")
    # Only our own cluster should exist: stop the package from creating and starting 'main'.
    conf = Path("/etc/postgresql-common/createcluster.conf")
    conf.parent.mkdir(parents=True, exist_ok=True)
    current = conf.read_text() if conf.exists() else ""
    if "create_main_cluster = false" not in current:
        conf.write_text(current + "create_main_cluster = false\n")
    # Our createcluster.conf predates the package's: keep it, without a conffile prompt.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "UCF_FORCE_CONFFOLD": "1"}
    progress("PostgreSQL: apt-get update")
    _run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q"], env=env, what="apt-get update"
    )
    progress("PostgreSQL: apt-get install postgresql (Debian's package)")
    _run(
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=300",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "postgresql",
        ],
        env=env,
        what="apt-get install postgresql",
    )
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise StackError("apt-get installed postgresql but no server binaries were found")
    return bin_dir


def _run(argv: list[str], *, env: dict[str, str] | None = None, what: str) -> str:
    # A session of its own: a Ctrl-C in the caller's terminal must not reach the server.
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=False, start_new_session=True
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise StackError(f"{what} failed (exit {result.returncode}): " + " | ".join(detail))
    return result.stdout


def _as_service_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise StackError(
            f"OS user {SERVICE_USER!r} is missing (Debian's postgresql package creates it)"
        ) from exc
    return ["runuser", "-u", SERVICE_USER, "--", *argv]


def _data_dir(config: StackConfig) -> Path:
    return config.postgres_dir / "data"


def _log_file(config: StackConfig) -> Path:
    return config.logs_dir / "postgres.log"


def _prepare_dirs(config: StackConfig) -> None:
    config.postgres_dir.mkdir(parents=True, exist_ok=True)
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    _log_file(config).touch()
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        for path in (config.postgres_dir, _log_file(config)):
            os.chown(path, user.pw_uid, user.pw_gid)
        # The service user must be able to walk down to its data directory.
        for parent in [config.data_dir, *config.data_dir.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)


def is_ready(config: StackConfig) -> bool:
    try:
        with (
            psycopg2.connect(
                host=HOST,
                port=config.postgres_port,
                user=DATABASE_USER,
                dbname="postgres",
                connect_timeout=2,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SHOW wal_level")
            row = cur.fetchone()
            return row is not None and row[0] == "logical"
    except psycopg2.Error:
        return False


def is_running(config: StackConfig) -> bool:
    pid_file = _data_dir(config) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def start(config: StackConfig, progress: Progress) -> None:
    """Install if needed, initialise on first run, start, and wait for a real query."""
    if is_ready(config):
        return
    bin_dir = ensure_installed(progress)
    if not is_running(config):
        require_free_port("PostgreSQL", config.postgres_port, "COURIER_DEV_PG_PORT")
    _prepare_dirs(config)
    data = _data_dir(config)
    if not (data / "PG_VERSION").exists():
        progress("PostgreSQL: initdb (first start)")
        _run(
            _as_service_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    DATABASE_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            what="initdb",
        )
    if not is_running(config):
        progress(f"PostgreSQL: starting on {HOST}:{config.postgres_port}")
        options = " ".join(f"-c {k}={v}" for k, v in SETTINGS.items())
        options += f" -p {config.postgres_port} -c unix_socket_directories={config.postgres_dir}"
        _run(
            _as_service_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(_log_file(config)),
                    "-o",
                    options,
                    "start",
                ]
            ),
            what="pg_ctl start",
        )
    wait_until(lambda: is_ready(config), what="PostgreSQL", timeout=60, log_file=_log_file(config))
    _ensure_database(config)


def _ensure_database(config: StackConfig) -> None:
    conn = psycopg2.connect(
        host=HOST, port=config.postgres_port, user=DATABASE_USER, dbname="postgres"
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        conn.close()


def stop(config: StackConfig) -> bool:
    """Stop the cluster (fast shutdown); True if it was running."""
    if not is_running(config):
        return False
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return False
    _run(
        _as_service_user(
            [str(bin_dir / "pg_ctl"), "-D", str(_data_dir(config)), "-m", "fast", "-w", "stop"]
        ),
        what="pg_ctl stop",
    )
    return True


def log_path(config: StackConfig) -> Path:
    return _log_file(config)
