"""Download helpers say what to fetch and where when there is no network."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lit_seq2seq import download


def test_offline_message_names_url_and_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def offline(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert download.main(["giga-fren", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "https://www.statmt.org/wmt10/training-giga-fren.tar" in err
    assert str(tmp_path / "giga-fren" / "giga-fren.release2.fixed.en") in err
    assert not list(tmp_path.iterdir()), "no half-downloaded archive left behind"
