"""Content-keyed caches that appear whole or not at all, in safe formats (NumPy and JSON).

Both models cache expensive preparation (tokenised corpora, word vectors, image activations) in a
folder named by a hash of everything that changes the result (``content_hash``). A folder is
written under a temporary name beside its final place and renamed when complete (``staged``), so
a crash, Ctrl-C or a full disk never leaves half a cache that the next run would trust. Arrays are
read with ``allow_pickle=False`` (``load_array``): a crafted cache file cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lit_common.errors import InputError


class CacheError(InputError):
    """A cache folder or file that cannot be written or read back; the message says what to do."""


def content_hash(obj: object, length: int = 16) -> str:
    """A short SHA-256 of ``obj`` as sorted-key JSON (``str`` for anything JSON lacks)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """A fresh temporary folder beside ``final``; renamed to ``final`` (replacing any older one)
    when the block ends normally, deleted when it raises.

    Raises:
        CacheError: the parent of ``final`` cannot be created or written (a file in the way, a
            read-only folder).
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
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
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
