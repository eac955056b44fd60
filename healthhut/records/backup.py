"""`healthhut db backup`: a consistent copy of the live database through SQLite's online backup API."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from healthhut.errors import StoreError
from healthhut.records.db import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE

log = logging.getLogger(__name__)

PAGES_PER_STEP = 1024  # copy in steps so the gateway's writers are not held off for the whole copy


def backup_database(source: str | Path, dest: str | Path) -> Path:
    """Copy `source` to `dest` (created 0600; replaced atomically if present) while others keep writing.

    The copy is written to a private temporary file beside `dest`, switched to rollback-journal mode so it is
    one self-contained file, synced, then renamed over `dest`.
    """
    src_path = Path(source).expanduser().resolve()
    dest_path = Path(dest).expanduser().resolve()
    if not src_path.is_file():
        raise StoreError(f"no database at {src_path}")
    if dest_path == src_path:
        raise StoreError("the backup cannot overwrite the database itself")
    dest_path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    tmp_path = dest_path.with_name(f".{dest_path.name}.{os.getpid()}.partial")
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)  # O_CREAT's mode does not apply to a leftover file from a crashed run
    os.close(fd)
    try:
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(tmp_path)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
                dst.execute("PRAGMA journal_mode=DELETE")
                problem = dst.execute("PRAGMA quick_check").fetchone()[0]
                if problem != "ok":
                    raise StoreError(f"the backup copy failed its integrity check: {problem}")
            finally:
                dst.close()
        finally:
            src.close()
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp_path.replace(dest_path)
        dir_fd = os.open(dest_path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
    except sqlite3.Error as exc:
        raise StoreError(f"backup failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for leftover in (tmp_path, tmp_path.with_name(tmp_path.name + "-journal")):
            leftover.unlink(missing_ok=True)
    log.info("database backed up size=%d", dest_path.stat().st_size)
    return dest_path
