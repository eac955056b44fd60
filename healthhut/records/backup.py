"""`healthhut db backup`: a consistent copy of the live database through SQLite's online backup API."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from healthhut.errors import StoreError
from healthhut.records.db import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE

log = logging.getLogger(__name__)

PAGES_PER_STEP = 1024  # copy in steps so the gateway's writers are not held off for the whole copy


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    pages: int
    size: int


def backup_database(source: str | Path, dest: str | Path) -> BackupResult:
    """Copy `source` to a new file `dest` (mode 0600; must not exist) while others keep writing.

    The copy is written to a private temporary file beside `dest`, switched to rollback-journal mode so it is
    one self-contained file, checked, synced, then renamed to `dest`: a crash never leaves a half backup there.
    """
    src_path = Path(source).expanduser().resolve()
    dest_path = Path(dest).expanduser().resolve()
    if not src_path.is_file():
        raise StoreError(f"no database at {src_path}")
    if dest_path.exists():
        raise StoreError(f"{dest_path} already exists", advice="choose a new file name for the backup")
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
                pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
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
    size = dest_path.stat().st_size
    log.info("database backed up pages=%d size=%d", pages, size)
    return BackupResult(dest_path, pages, size)
