"""Opening the SQLite database safely (private file, WAL, synchronous=FULL) and running its migrations.

Also the functions behind `healthhut db migrate|check`: they work on a path and need no RecordStore.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from healthhut.errors import StoreError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000  # the gateway and sync processes share the file; a writer holds the lock for ms
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BEGIN_OPTION = "healthhut_begin"  # execution option: "IMMEDIATE" (default, writers) or "DEFERRED" (readers)
# The newest revision in migrations/versions (a test keeps them equal). Every process start opens the store;
# comparing against this constant spares the ~0.25 s of importing Alembic when there is nothing to migrate.
SCHEMA_HEAD = "0004"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema stands against the code's newest migration."""

    path: str
    current: str | None
    head: str
    integrity: str | None = None  # "ok" or the first problem PRAGMA quick_check reported

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def create_private_file(path: Path) -> None:
    """Create `path` (and its parent, 0700) with mode 0600 before SQLite opens it; tighten an existing one."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        if not path.is_file():
            raise StoreError(f"{path} exists and is not a database file") from None
        tighten_mode(path)
    else:
        os.close(fd)
        log.info("created database file mode=%o", PRIVATE_FILE_MODE)


def tighten_mode(path: Path) -> None:
    """Make an existing database (or sidecar) file 0600 if anyone else may read it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(PRIVATE_FILE_MODE)
        log.warning("tightened database file mode from %o to %o", mode, PRIVATE_FILE_MODE)


def tighten_sidecars(path: Path) -> None:
    """SQLite gives -wal/-shm the database's mode; check anyway, a copied-in file may have had another."""
    for suffix in SIDECAR_SUFFIXES:
        tighten_mode(path.with_name(path.name + suffix))


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # take transaction control away from the sqlite3 module: we emit BEGIN ourselves (see _on_begin)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"the database refused WAL journal mode (got {mode})")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    # IMMEDIATE for writers: a deferred transaction that later writes can fail with SQLITE_BUSY at once
    # (no busy wait) when the other process wrote in between; readers ask for DEFERRED.
    mode = conn.get_execution_options().get(BEGIN_OPTION, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(path: Path) -> Engine:
    """An engine on `path` whose connections are WAL, synchronous=FULL, foreign keys on, explicit BEGIN."""
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=4,
        max_overflow=8,
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection in a deferred (read) transaction: sees one snapshot, never blocks writers (WAL)."""
    with engine.connect() as conn:
        conn.execution_options(**{BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection in one BEGIN IMMEDIATE transaction, committed on success, rolled back on error."""
    with engine.begin() as conn:
        yield conn


# --- migrations ---------------------------------------------------------------------------------------

def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config  # heavy: imported only when migrations are needed

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration revision this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise StoreError("no database migrations are packaged")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the database (None for an empty one), read without importing Alembic."""
    has_table = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'").first()
    if has_table is None:
        return None
    versions = [row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    if len(versions) > 1:
        raise StoreError("the database records more than one schema revision")
    return versions[0] if versions else None


def is_current(engine: Engine) -> bool:
    with reading(engine) as conn:
        return current_revision(conn) == SCHEMA_HEAD


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run Alembic migrations up to `revision` in one IMMEDIATE transaction (DDL is transactional in SQLite)."""
    try:
        if revision == "head" and is_current(engine):
            return
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database schema revision: {type(exc).__name__}") from exc
    from alembic import command
    from alembic.util import CommandError

    try:
        with writing(engine) as conn:
            before = current_revision(conn)
            command.upgrade(_alembic_config(conn), revision)
            after = current_revision(conn)
    except CommandError as exc:
        raise StoreError(f"database migration failed: {exc}",
                         advice="is this database from a newer healthhut?") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"database migration failed: {type(exc).__name__}") from exc
    if before != after:
        log.info("migrated database schema from %s to %s", before, after)


def status(engine: Engine, path: Path, *, integrity: bool = False) -> SchemaStatus:
    with reading(engine) as conn:
        current = current_revision(conn)
        problem = None
        if integrity:
            problem = str(conn.exec_driver_sql("PRAGMA quick_check").scalar())
    return SchemaStatus(path=str(path), current=current, head=head_revision(), integrity=problem)


def open_engine(path: str | Path, *, create: bool) -> tuple[Path, Engine]:
    """Resolve `path`, create it privately if asked (else it must exist), and return an engine on it."""
    resolved = Path(path).expanduser().resolve()
    if create:
        create_private_file(resolved)
    elif not resolved.is_file():
        raise StoreError(f"no database at {resolved}")
    engine = make_engine(resolved)
    try:
        with engine.connect() as conn:  # runs _on_connect: WAL is set before anything else happens
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database: {type(exc).__name__}",
                         advice="check the path, its permissions and free disk space") from exc
    tighten_sidecars(resolved)
    return resolved, engine


def migrate_database(path: str | Path) -> SchemaStatus:
    """`healthhut db migrate PATH`: create the file if needed and bring its schema to head."""
    resolved, engine = open_engine(path, create=True)
    try:
        upgrade(engine)
        tighten_sidecars(resolved)
        return status(engine, resolved)
    finally:
        engine.dispose()


def check_database(path: str | Path) -> SchemaStatus:
    """`healthhut db check PATH`: current vs head revision and SQLite's quick integrity check; changes nothing."""
    resolved, engine = open_engine(path, create=False)
    try:
        return status(engine, resolved, integrity=True)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot check the database: {type(exc).__name__}") from exc
    finally:
        engine.dispose()


def schema_matches_tables(conn: Connection) -> list[Any]:
    """Differences between the migrated schema and tables.py (empty when they agree); for tests and `db check`."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from healthhut.records.tables import METADATA

    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    diffs = compare_metadata(context, METADATA)
    return [d for d in diffs if not (isinstance(d, tuple) and d[0] == "remove_table"
                                     and d[1].name == "alembic_version")]

