"""Download helpers: what to fetch and where without network; the Tatoeba splits rebuilt from an
archive with the shipped membership, checked archives, nothing half-written."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lit_seq2seq import download
from tests.conftest import SHARED_DATA


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


def make_zip(path: Path, lines: list[str], member: str = "fra-eng/fra.txt") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, "".join(line + "\n" for line in lines))
    return path


def membership_sample() -> dict[str, list[str]]:
    splits = download.read_membership()
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [5431, 679, 678]
    return splits


def test_tatoeba_splits_follow_the_shipped_membership(tmp_path: Path) -> None:
    splits = membership_sample()
    valid_en, test_en, train_en = splits["valid"][0], splits["test"][0], splits["train"][0]
    lines = [
        f"{train_en}\tUne question d'entraînement ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
        f"{valid_en}\tUne question de validation ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
        f"{valid_en}\tUne autre traduction ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
        f"{test_en}\tUne question de test ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
        f"{test_en}\tUne question de test ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",  # dupe
        "Why is this new?\tPourquoi est-ce nouveau ?\tCC-BY 2.0 (France) Attribution: tatoeba.org",
        "Hello.\tBonjour.\tCC-BY 2.0 (France) Attribution: tatoeba.org",  # not a question
        "  \tVide.\tCC-BY 2.0 (France) Attribution: tatoeba.org",  # empty English side
    ]
    archive = make_zip(tmp_path / "fra-eng.zip", lines)
    assert (
        download.main(["tatoeba", "--dest", str(tmp_path / "out"), "--archive", str(archive)]) == 0
    )
    out = tmp_path / "out" / "fra-eng"

    def rows(name: str) -> list[list[str]]:
        return [line.split("\t") for line in (out / name).read_text().splitlines()]

    assert len(rows("pairs.tsv")) == 6 and len(rows("questions.tsv")) == 5
    assert rows("questions.valid.tsv") == [
        ["Une question de validation ?", valid_en], ["Une autre traduction ?", valid_en],
    ]  # fmt: skip
    assert rows("questions.test.tsv") == [["Une question de test ?", test_en]]
    assert [en for _, en in rows("questions.train.tsv")] == [train_en, "Why is this new?"]
    assert [en for _, en in rows("pairs.train.tsv")] == [train_en, "Why is this new?", "Hello."]
    assert not list(out.glob("*.part"))


def test_tatoeba_refuses_html_pages_broken_zips_and_wrong_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    page = tmp_path / "page.zip"
    page.write_bytes(b"<!DOCTYPE html><html><body>Please log in</body></html>")
    assert download.main(["tatoeba", "--dest", str(tmp_path), "--archive", str(page)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an HTML page, not a zip archive" in err[0]
    broken = tmp_path / "broken.zip"
    broken.write_bytes(make_zip(tmp_path / "ok.zip", ["Who?\tQui ?"]).read_bytes()[:30])
    assert download.main(["tatoeba", "--dest", str(tmp_path), "--archive", str(broken)]) == 1
    assert "not a zip archive" in capsys.readouterr().err
    other = make_zip(tmp_path / "other.zip", ["Who?\tQui ?"], member="fra-eng/deu.txt")
    assert download.main(["tatoeba", "--dest", str(tmp_path), "--archive", str(other)]) == 1
    assert "has no fra.txt" in capsys.readouterr().err

    payload = make_zip(tmp_path / "served.zip", ["Who?\tQui ?"]).read_bytes()

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *args: object) -> None:
            self.close()

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(payload))
    dest = tmp_path / "dl"
    assert download.main(["tatoeba", "--dest", str(dest)]) == 1
    assert "SHA-1" in capsys.readouterr().err
    assert not list((dest / "fra-eng").iterdir()), "the damaged download is not kept"
    assert download.main(["tatoeba", "--dest", str(dest), "--source", "manythings"]) == 0
    assert "another release" in capsys.readouterr().out


def test_tatoeba_offline_names_the_url_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def offline(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert download.main(["tatoeba", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "fra-eng.zip" in err and str(tmp_path / "fra-eng" / "questions.train.tsv") in err
    assert not list((tmp_path / "fra-eng").iterdir()), "no partial download left"


@pytest.mark.realdata
@pytest.mark.skipif(
    not (SHARED_DATA / "fra-eng" / "pairs.tsv").is_file(), reason="needs ../shared/data/fra-eng"
)
def test_tatoeba_rebuilds_the_shared_files_byte_for_byte(tmp_path: Path, capsys: Any) -> None:
    """The 2019 release's fra.txt (rebuilt from pairs.tsv) gives the very files of shared/data."""
    rows = (SHARED_DATA / "fra-eng" / "pairs.tsv").read_text(encoding="utf-8").splitlines()
    lines = [f"{en}\t{fr}" for fr, en in (r.split("\t") for r in rows)]
    archive = make_zip(tmp_path / "fra-eng.zip", lines)
    assert download.main(["tatoeba", "--dest", str(tmp_path), "--archive", str(archive)]) == 0
    assert "identical to ../shared/data/fra-eng" in capsys.readouterr().out
    for name in download.REFERENCE_SHA256:
        built = (tmp_path / "fra-eng" / name).read_bytes()
        assert built == (SHARED_DATA / "fra-eng" / name).read_bytes(), name


class Served(io.BytesIO):
    """A urlopen response: the bytes, and a Content-Length header that may claim more."""

    def __init__(self, payload: bytes, length: int | None = None) -> None:
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload) if length is None else length)}

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


@pytest.mark.parametrize(
    ("payload", "length", "message"),
    [
        (b"<!DOCTYPE html><html>Sign in</html>", None, "the server sent a web page"),
        (b"  <html><body>302 Moved</body></html>", None, "the server sent a web page"),
        (b"not a tar file " * 100, None, "not a tar archive"),
        (b"ustar" * 10, 10_000, "got 50 of 10,000 bytes (connection cut)"),
    ],
)
def test_a_download_that_is_not_the_archive_is_refused_and_not_kept(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    payload: bytes,
    length: int | None,
    message: str,
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Served(payload, length))
    assert download.main(["giga-fren", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "statmt.org" in err[0], err
    assert list(tmp_path.iterdir()) == [], "no partial or wrong file is left in place"


def test_gzip_magic_is_checked(tmp_path: Path) -> None:
    page = tmp_path / "cc.fr.300.bin.gz.part"
    page.write_bytes(b"not gzip at all")
    with pytest.raises(download.DownloadError, match=r"not a gz archive"):
        download.check_payload(page, "cc.fr.300.bin.gz")
    page.write_bytes(b"\x1f\x8b\x08rest")
    download.check_payload(page, "cc.fr.300.bin.gz")
