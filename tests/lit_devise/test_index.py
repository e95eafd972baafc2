"""lit_devise/index.py without a model: which files an index run reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lit_devise.images import ImageDataError
from lit_devise.index import list_images
from tests.helpers import photo


def test_only_regular_image_files_are_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A FIFO named like an image would hang the run at its first read, a folder named x.jpg
    is not an image: both are skipped, and the skip is logged with its count."""
    good = photo(tmp_path / "a" / "good.png")
    os.mkfifo(tmp_path / "a" / "pipe.jpg")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING"):
        assert list_images(tmp_path) == [str(good.resolve())]
    assert "skipped 2 entries that are not regular files" in caplog.text
    with pytest.raises(ImageDataError, match="no images"):
        list_images(tmp_path / "folder.jpg")
