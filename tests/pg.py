"""A real, private PostgreSQL server for tests: started in a temporary directory, stopped after.

Where the server comes from, first found wins: ``VESAGENT_TEST_PG_BIN`` (a directory holding
``initdb`` and ``pg_ctl``), Debian's ``/usr/lib/postgresql/<newest>/bin``, or ``initdb`` on the
PATH. ``.ci/run`` installs Debian's ``postgresql`` package when none is there. PostgreSQL refuses
to run as root, so under root the server runs as the ``postgres`` system user (which Debian's
package creates) in a directory handed to it.

The server listens on a free port of 127.0.0.1 only, with ``fsync=off``: tests need the real
engine (transactions, locks, ``now()``, ``pg_terminate_backend``) and survive a crash of the
server process (commits still write their WAL before they return), not a power cut. Each
test gets a database of its own (``pg_url``), dropped after it.

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import free_port
from vesagent.store_pg import PgStore

SUPERUSER = "vesagent"


def find_bin_dir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl`` to use, or None when none is installed."""
    configured = os.environ.get("VESAGENT_TEST_PG_BIN")
    if configured:
        return Path(configured)
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


class PostgresServer:
    """One ``postgres`` process on 127.0.0.1:``port`` with its data in a temporary directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="vesagent-pg-"))
        self.data = self.base / "data"
        self._user: int | None = None
        self._group: int | None = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no 'postgres' user to run PostgreSQL as"
                ) from None
            self._user, self._group = account.pw_uid, account.pw_gid
            os.chown(self.base, self._user, self._group)
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            user=self._user,
            group=self._group,
            cwd=self.base,
        )
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr or result.stdout}\n{tail}")

    def start(self) -> None:
        """initdb (the first time), then start; wait until it accepts connections."""
        if not self.data.exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                "--no-sync", "--locale=C",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base}"
            " -c fsync=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self, remove: bool = True) -> None:
        """Stop the server at once (a crash, for PostgreSQL); remove its directory unless told."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            if remove:
                shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL of database ``dbname`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any session still connected to it."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server, started and stopped (skipped where none is installed,
    except under CI, where .ci/run installs one)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL server installed (.ci/run should have installed one)")
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server."""
    with private_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh database for this test only."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def open_pg(pg_url: str) -> Iterator[Callable[..., PgStore]]:
    """Open ``PgStore``s on the test's database (one per simulated replica); all closed after."""
    opened: list[PgStore] = []

    def make(**options: Any) -> PgStore:
        store = PgStore(pg_url, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
