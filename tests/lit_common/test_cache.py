"""lit_common/cache.py: content keys, folders that appear whole or not at all, safe arrays."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from lit_common.cache import CacheError, content_hash, load_array, staged
from lit_common.errors import InputError


def test_content_hash_follows_the_content_not_the_key_order() -> None:
    assert content_hash({"a": 1, "b": [2, 3]}) == content_hash({"b": [2, 3], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert len(content_hash(Path("x"))) == 16  # anything JSON lacks is hashed as its str()


def test_staged_publishes_whole_and_replaces_an_older_folder(tmp_path: Path) -> None:
    final = tmp_path / "cache" / "key"
    final.mkdir(parents=True)
    (final / "stale.txt").write_text("old")
    with staged(final) as tmp:
        assert tmp.parent == final.parent and tmp != final
        (tmp / "data.txt").write_text("new")
        assert (final / "stale.txt").is_file(), "the old folder stays until the new one is whole"
    assert sorted(p.name for p in final.iterdir()) == ["data.txt"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["key"], "no temporary left"


def test_staged_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    final = tmp_path / "key"
    with pytest.raises(KeyboardInterrupt), staged(final) as tmp:
        (tmp / "half.npy").write_bytes(b"partial")
        raise KeyboardInterrupt
    assert not final.exists() and list(tmp_path.iterdir()) == []


def test_a_cache_folder_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with (
        pytest.raises(CacheError, match=r"cannot write the cache folder .*file"),
        staged(blocker / "key"),
    ):
        pass
    assert issubclass(CacheError, InputError)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(CacheError, match="writable folder"), staged(locked / "key"):
            pass


def test_load_array_refuses_pickles_and_garbage(tmp_path: Path) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.arange(4))
    assert load_array(good).tolist() == [0, 1, 2, 3]
    assert load_array(good, mmap_mode="r")[3] == 3
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"run": "code"}], dtype=object), allow_pickle=True)
    with pytest.raises(CacheError, match="not a plain array"):
        load_array(objects)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CacheError, match=r"delete .* and run again"):
        load_array(raw)


def test_a_cache_folder_removed_mid_run_is_one_clear_error(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "cache"
    removed = pytest.raises(CacheError, match=r"was removed while part was written; run again")
    with removed, staged(root / "part") as tmp:
        (tmp / "a.json").write_text("{}")
        shutil.rmtree(root)  # another process cleans the cache
        (tmp / "b.json").write_text("{}")
    assert not root.exists()
    # Other errors pass through unchanged.
    with pytest.raises(OSError, match="unrelated"), staged(tmp_path / "c" / "part"):
        raise PermissionError("unrelated")


def test_staged_keeps_a_copy_another_process_finished_first(tmp_path: Path) -> None:
    # Two nodes preparing into one shared cache folder: the one that finishes second keeps the
    # first one's folder (same content key) instead of deleting it under its writer.
    final = tmp_path / "cache" / "key"
    with staged(final, done="report.json") as tmp:
        (tmp / "report.json").write_text("second")
        other = final.parent / ".other"
        other.mkdir()
        (other / "report.json").write_text("first")
        (other / "vectors").mkdir()  # the first writer already writes inside it
        other.rename(final)
    assert (final / "report.json").read_text() == "first" and (final / "vectors").is_dir()
    assert sorted(p.name for p in final.parent.iterdir()) == ["key"], "ours removed"
    # A folder without the file is not finished: replaced, as before.
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "half.npy").write_bytes(b"")
    with staged(stale, done="report.json") as tmp:
        (tmp / "report.json").write_text("new")
    assert sorted(p.name for p in stale.iterdir()) == ["report.json"]
