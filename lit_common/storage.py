"""Optuna storages from one string, so a study can be shared by several processes or machines.

- ``sqlite:///FILE``: one file, for one process at a time (or a few on one machine's local disk);
  its locks are unreliable on network file systems, and parallel writers see "database is locked".
- ``journal:///FILE``: Optuna's journal storage, an append-only log guarded by a lock file: many
  processes on many machines share it through a shared (network) file system, with no server.
- any other URL (``postgresql://...``, ``mysql+pymysql://...``): an RDB server, what a cluster
  with many concurrent workers should use when it has one.
- None: in memory, for one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SQLITE, JOURNAL = "sqlite:///", "journal:///"


def journal_path(url: str) -> Path | None:
    """The log file of a ``journal:///FILE`` URL (a relative path is relative to the working
    directory, like SQLite's), else None."""
    return Path(url.removeprefix(JOURNAL)) if url.startswith(JOURNAL) else None


def open_storage(url: str | None, create: bool = True) -> Any:
    """What ``optuna.create_study``/``load_study`` take as ``storage`` for ``url``: the URL itself
    (SQLite, RDB), a ``JournalStorage`` for ``journal:///FILE``, or None (memory). With
    ``create``, the folder of a SQLite or journal file is made (SQLite makes none)."""
    if url is None:
        return None
    path = storage_file(url)
    if create and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(JOURNAL):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        log = str(path)
        return JournalStorage(JournalFileBackend(log, lock_obj=JournalFileOpenLock(log)))
    return url


def storage_file(url: str) -> Path | None:
    """The local file behind a SQLite or journal URL (to check that it exists), else None."""
    if url.startswith(SQLITE):
        return Path(url.removeprefix(SQLITE))
    return journal_path(url)
