"""lit_common/vectors.py: .vec files read for the wanted words and the most frequent ones."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lit_common.vectors import VectorsError, read_vec, vec_dimension
from tests.helpers import write_vec


def test_read_vec_keeps_the_wanted_and_the_first_words(tmp_path: Path) -> None:
    table = {"the": [1.0, 0.0], "of": [0.0, 1.0], "cat": [1.0, 1.0], "zebra": [2.0, 2.0]}
    path = write_vec(tmp_path / "v.vec", table)
    assert sorted(read_vec(path, {"zebra"}, 2)) == ["zebra"]
    assert sorted(read_vec(path, {"zebra"}, 2, first=2)) == ["of", "the", "zebra"]
    assert sorted(read_vec(path, set(), 2, first=10)) == sorted(table)
    no_header = write_vec(tmp_path / "n.vec", table, header=False)
    assert sorted(read_vec(no_header, set(), 2, first=1)) == ["the"]
    assert vec_dimension(path) == vec_dimension(no_header) == 2


def test_malformed_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.vec"
    path.write_text("2 3\nthe 1 2 3\nof 1 2\n")
    with pytest.raises(VectorsError, match=r"bad\.vec:3: expected a word and 3 numbers, got 2"):
        read_vec(path, {"of"}, 3)
    with pytest.raises(VectorsError, match="dimension 3 but the embedding has 4"):
        read_vec(path, {"of"}, 4)
    with pytest.raises(VectorsError, match="does not exist"):
        read_vec(tmp_path / "missing.vec", set(), 3)


def test_repeated_words_are_counted_and_the_first_row_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dup.vec"
    path.write_text("4 2\ncat 1 0\ndog 0 1\ncat 5 5\ndog 7 7\nemu 1 1\ncat 9 9\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lit_common.vectors"):
        found = read_vec(path, {"cat", "dog"}, dim=2)
    assert found["cat"].tolist() == [1.0, 0.0] and found["dog"].tolist() == [0.0, 1.0]
    assert "emu" not in found
    (message,) = [r.getMessage() for r in caplog.records]
    assert (
        "2 kept words appear more than once (3 extra rows); the first row of each is used"
        in message
    )
    assert "'cat' (lines 2, 4)" in message and "'dog' (lines 3, 5)" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lit_common.vectors"):
        read_vec(path, {"emu"}, dim=2)
    assert not caplog.records  # repeats of words nobody asked for cost nothing to report
