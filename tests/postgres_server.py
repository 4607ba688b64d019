"""A throwaway PostgreSQL cluster for tests and benchmarks (a real server, never a mock).

`PostgresServer.start()` runs `initdb --no-sync` into a fresh `mkdtemp(dir="/tmp")`
directory (pytest's `tmp_path` is mode 0700 under root's tree, unusable by the server's
user), starts `postgres` on a unix socket in that directory only (no TCP) with
`fsync=off`, and `stop()` removes everything. As root, the server runs as the `postgres`
user through `runuser`, since PostgreSQL refuses to run as root.

The binaries are looked up in `$PG_BIN`, Debian's `/usr/lib/postgresql/<version>/bin`, and
`PATH`. `.ci/run` and `make test` install Debian's `postgresql` package when no `initdb`
is found (`make postgres-server`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg

SERVER_USER = "postgres"
_names = itertools.count()


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine, or the server would not start."""


def find_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(os.path.realpath(on_path)).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    raise PostgresUnavailable(
        "no PostgreSQL server found (initdb/postgres); install Debian's `postgresql` "
        "package (`make postgres-server`) or set PG_BIN"
    )


class PostgresServer:
    """One running throwaway cluster; `url(db)` gives an asyncpg-ready DSN."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.data = root / "data"
        self.socket_dir = root

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + start; raises PostgresUnavailable with the server's log on failure."""
        bin_dir = find_bin_dir()
        root = Path(tempfile.mkdtemp(prefix="codebot-pg-", dir="/tmp"))
        server = cls(root, bin_dir)
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(root, user=SERVER_USER)
        os.chmod(root, 0o755)  # the socket must be reachable by the test process
        try:
            server._run(
                "initdb",
                "--no-sync",
                "--auth=trust",
                f"--username={SERVER_USER}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-D",
                str(server.data),
            )
            options = (
                f"-k {root} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
            )
            server._run(
                "pg_ctl", "-D", str(server.data), "-w", "-s", "-l", str(root / "log"),
                "-o", options, "start",
            )  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as error:
            log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            detail = getattr(error, "stderr", "") or ""
            raise PostgresUnavailable(f"PostgreSQL did not start: {error} {detail} {log}") from None
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        """A postgresql:// URL for `database` over the unix socket."""
        return f"postgresql://{SERVER_USER}@/{database}?host={self.socket_dir}"

    async def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        connection = await asyncpg.connect(self.url())
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await connection.close()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-w", "-s", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
