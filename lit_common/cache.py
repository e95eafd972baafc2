"""Content-keyed caches that appear whole or not at all, in safe formats (NumPy and JSON).

Both models cache expensive preparation (tokenised corpora, word vectors, image activations) in a
folder named by a hash of everything that changes the result (``content_hash``). A folder is
written under a temporary name beside its final place and renamed when complete (``staged``), so
a crash, Ctrl-C or a full disk never leaves half a cache that the next run would trust. Arrays are
read with ``allow_pickle=False`` (``load_array``): a crafted cache file cannot run code.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lit_common.errors import InputError
from lit_common.schema import file_digest

log = logging.getLogger(__name__)


class CacheError(InputError):
    """A cache folder or file that cannot be written or read back; the message says what to do."""


def content_hash(obj: object, length: int = 16) -> str:
    """A short SHA-256 of ``obj`` as sorted-key JSON (``str`` for anything JSON lacks)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


_HASHED: dict[tuple[str, tuple[int, ...]], str] = {}  # this process's hashes, by stamp


def file_identity(path: str | Path, memo: Path | None = None) -> dict[str, object]:
    """What identifies a file's content for a cache key: its resolved path, size, mtime and
    SHA-256, so a file replaced in place (even with its old mtime) is a new input.

    Hashing a multi-GB vector file takes seconds, so the hash is remembered under the file's
    size, mtime, ctime and inode, in this process and in ``memo`` (a JSON file) across runs; any
    write to the file changes its ctime, which no one can set back, so a remembered hash is never
    stale. Cache keys are asked for several times a run: the file is read at most once.
    """
    path = Path(path).resolve()
    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    digest = _HASHED.get((str(path), stamp)) or _remembered(path, stamp, memo)
    if digest is None:
        if st.st_size > 100 << 20:
            log.info("hashing %s (%.1f GB) once, for the cache key", path, st.st_size / 1e9)
        digest = str(file_digest(path)["sha256"])
        if memo is not None:
            _remember(path, stamp, digest, memo)
    _HASHED[(str(path), stamp)] = digest
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def _read_memo(memo: Path | None) -> dict[str, object]:
    if memo is None or not memo.is_file():
        return {}
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        return {}  # a damaged memo is only a lost shortcut
    return known if isinstance(known, dict) else {}


def _remembered(path: Path, stamp: tuple[int, ...], memo: Path | None) -> str | None:
    entry = _read_memo(memo).get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == list(stamp):
        return str(entry.get("sha256"))
    return None


def _remember(path: Path, stamp: tuple[int, ...], digest: str, memo: Path) -> None:
    known = _read_memo(memo)
    known[str(path)] = {"stamp": list(stamp), "sha256": digest}
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, memo)
    except OSError:
        pass  # an unwritable memo only costs hashing again in the next run


def _finished(final: Path, done: str | None) -> bool:
    return done is not None and (final / done).is_file()


def _publish(tmp: Path, final: Path, done: str) -> None:
    """Rename ``tmp`` to ``final`` unless another process's finished copy is there first. Never
    deletes a finished folder: an unfinished one (a damaged cache) is renamed aside first, and
    a rename that finds a folder in place looks again."""
    for _ in range(3):
        if _finished(final, done):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        try:
            tmp.rename(final)
            return
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        if _finished(final, done):  # another process's copy arrived in between
            continue
        aside = final.with_name(f".{final.name}-unfinished-{os.getpid()}")
        try:
            final.rename(aside)
        except FileNotFoundError:
            continue
        shutil.rmtree(aside, ignore_errors=True)
    tmp.rename(final)  # a last try raises what the file system says


@contextmanager
def staged(final: Path, done: str | None = None) -> Iterator[Path]:
    """A fresh temporary folder beside ``final``; renamed to ``final`` (replacing any older one)
    when the block ends normally, deleted when it raises.

    ``done`` names the file a finished folder holds (``report.json``): when ``final`` has it by
    the time the block ends, another process wrote the same content-keyed cache meanwhile (two
    nodes preparing into one shared cache folder), and its folder is kept, ours dropped. Without
    this, the later writer would delete a folder the first one is already writing into.

    Raises:
        CacheError: the parent of ``final`` cannot be created or written (a file in the way, a
            read-only folder), is removed while the block writes, or the disk is full.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    except OSError as err:
        raise CacheError(
            f"cannot write the cache folder {final.parent} ({err.strerror or err}); "
            "point the cache setting at a writable folder"
        ) from None
    try:
        yield tmp
        if done is None:
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        else:
            _publish(tmp, final, done)
    except OSError as err:
        gone = not tmp.is_dir()  # removed under us (the block's own missing inputs are not)
        shutil.rmtree(tmp, ignore_errors=True)
        if gone:
            raise CacheError(
                f"the cache folder {final.parent} was removed while {final.name} was written; "
                "run again"
            ) from None
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CacheError(f"no space left writing the cache {final}; free some") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_array(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """A NumPy array from a cache file. Pickled (object) arrays are refused, never unpickled."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)  # type: ignore[no-any-return]
    except (ValueError, OSError, EOFError) as err:
        raise CacheError(
            f"cache file {path} is unreadable or not a plain array ({err}); delete "
            f"{path.parent} and run again to rebuild it"
        ) from None
