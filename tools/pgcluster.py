"""A throwaway PostgreSQL server for tests and benchmarks: initdb, pg_ctl, a free port.

Standard library only. The binaries come from ``$PIDGIN_PG_BIN``, else ``pg_config
--bindir``, else Debian's ``/usr/lib/postgresql/<newest>/bin``, else ``PATH``
(``tools/ci/install-postgres.sh`` installs Debian's package). PostgreSQL refuses to run
as root, so under root the server runs as the ``postgres`` user (or ``nobody``) in a
directory it owns. Authentication is ``trust`` on 127.0.0.1 only; the data directory is
removed on ``stop()``.

    with PostgresCluster() as cluster:
        dsn = cluster.create_database("lake")   # "dbname=lake host=127.0.0.1 port=... user=..."
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresCluster", "PostgresUnavailable", "find_bindir", "free_port"]

SUPERUSER = "pidgin"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here; the message says how to get them."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``."""
    candidates: list[Path] = []
    if os.environ.get("PIDGIN_PG_BIN"):
        candidates.append(Path(os.environ["PIDGIN_PG_BIN"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        candidates.extend(p / "bin" for p in reversed(versions))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) found; install them with "
        "tools/ci/install-postgres.sh (Debian's postgresql package) or set $PIDGIN_PG_BIN"
    )


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (tests also use it as a closed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user() -> str | None:
    """Who runs the server: ourselves, or under root an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' user to run as")


class PostgresCluster:
    """One PostgreSQL server in a temporary directory, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.user = _service_user()
        self.port = 0
        self.host = "127.0.0.1"
        self._dir: Path | None = None

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return result

    def start(self) -> PostgresCluster:
        # Not under pytest's tmp_path: its parents are private to root, and the server
        # may run as another user.
        self._dir = Path(tempfile.mkdtemp(prefix="pidgin-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self._dir, entry.pw_uid, entry.pw_gid)
        data = self._dir / "data"
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--no-sync",
        )
        for _attempt in range(5):  # a free port can be taken before the server binds it
            self.port = free_port()
            options = (
                f"-p {self.port} -h {self.host} -k {self._dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(self._dir / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                return self
            except RuntimeError:
                continue
        raise RuntimeError(f"PostgreSQL did not start; see {self._dir / 'server.log'}")

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string (keyword form) for a database of this server."""
        return f"dbname={dbname} host={self.host} port={self.port} user={SUPERUSER}"

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name``; returns its connection string."""
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            name,
        )
        return self.dsn(name)

    def stop(self) -> None:
        if self._dir is None:
            return
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self._dir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
