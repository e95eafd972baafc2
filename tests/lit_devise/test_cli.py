"""lit_devise.index and lit_devise.search: the CLI round trip, output format, bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lit_common.checkpoint import CheckpointError
from lit_devise import index as index_cli
from lit_devise import search as search_cli
from lit_devise.knn import KnnError
from tests.helpers import run_module, write_unreadable

# Fits models (seconds each): `make test-unit` leaves these out. One worker builds the index.
pytestmark = [pytest.mark.train, pytest.mark.xdist_group("devise_index")]

LINE = re.compile(r"^(\d+) (-?\d+\.\d+) (.+)$")


@pytest.fixture(scope="module")
def built(devise_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    images = tmp_path_factory.mktemp("to_index")
    import shutil

    shutil.copytree(devise_run["shapes"] / "images", images / "images")
    write_unreadable(images / "images" / "junk")
    out = tmp_path_factory.mktemp("index") / "idx"
    code = index_cli.main(
        ["--ckpt", str(devise_run["ckpt"]), "--images", str(images), "--out", str(out)]
    )
    assert code == 0
    return {**devise_run, "index": out, "images": images / "images"}


def run(*args: str) -> subprocess.CompletedProcess:
    """A real ``python -m`` process: what only a process shows (warnings at import, the exit
    status the interpreter gives, no traceback)."""
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120
    )


def parse(stdout: str) -> list[tuple[int, float, str]]:
    rows = []
    for line in stdout.strip().splitlines():
        match = LINE.match(line)
        assert match, f"not `<rank> <score> <label or path>`: {line!r}"
        rows.append((int(match[1]), float(match[2]), match[3]))
    return rows


def test_index_counts_unreadable_images(built: dict[str, Any]) -> None:
    import json

    info = json.loads((built["index"] / "index.json").read_text())
    assert info["images"] == 600 + 1  # 20 classes x 30, plus junk/good.jpg
    assert sorted(Path(p).name for p in info["unreadable"]) == [
        "empty.jpg",
        "text.jpg",
        "truncated.jpg",
    ]
    assert info["labels"] == 20 + 22 - 0 and info["classes"] == 20


def test_text_query_returns_images_of_that_class(built: dict[str, Any]) -> None:
    for colour in ("red", "green", "yellow"):
        results = search_cli.search(built["index"], text=colour, k=10)
        hits = [colour in Path(path).parent.name for _, _, path in results]
        assert sum(hits) >= 9, (colour, results)
    results = search_cli.search(built["index"], text="red circle", k=5)
    assert sum("red_circle" in path for _, _, path in results) >= 3, results


def test_search_cli_round_trip_writes_grids(built: dict[str, Any], tmp_path: Path) -> None:
    proc = run(
        "lit_devise.search",
        "--index",
        str(built["index"]),
        "--text",
        "engine boat",
        "--k",
        "4",
        "--out",
        str(tmp_path / "text.png"),
    )
    assert proc.returncode == 0, proc.stderr
    rows = parse(proc.stdout)
    assert [r for r, _, _ in rows] == [1, 2, 3, 4] and all(Path(p).is_file() for _, _, p in rows)
    assert [s for _, s, _ in rows] == sorted((s for _, s, _ in rows), reverse=True)
    assert (tmp_path / "text.png").stat().st_size > 1000
    query = next((built["images"] / "green_square").iterdir())
    proc = run_module(
        "lit_devise.search",
        "--index",
        str(built["index"]),
        "--image",
        str(query),
        "--target",
        "labels",
        "--k",
        "3",
        "--out",
        str(tmp_path / "labels.png"),
    )
    assert proc.returncode == 0, proc.stderr
    labels = [label for _, _, label in parse(proc.stdout)]
    assert any("green" in label or "square" in label for label in labels), labels
    assert (tmp_path / "labels.png").is_file()
    results = search_cli.search(built["index"], image=str(query), k=3)
    assert results[0][2] == str(query.resolve()) and results[0][1] == pytest.approx(1.0, abs=1e-4)


def test_bad_queries_get_one_clear_line(built: dict[str, Any], tmp_path: Path) -> None:
    cases = [
        (["--index", str(built["index"]), "--text", "zeppelin"], "no word vector for ['zeppelin']"),
        (["--index", str(tmp_path), "--text", "red"], "no index.json"),
        (["--index", str(built["index"]), "--image", str(tmp_path / "x.jpg")], "does not exist"),
    ]
    for args, message in cases:
        proc = run_module("lit_devise.search", *args)
        assert proc.returncode == 1 and message in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr
    proc = run(
        "lit_devise.index",
        "--ckpt",
        str(tmp_path / "no.ckpt"),
        "--images",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 1 and "error: checkpoint" in proc.stderr


def test_text_queries_never_read_the_vector_file(
    built: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index keeps the query words (the file's most frequent plus the labels' words): a text
    search reads no vector file unless --vectors asks for one."""
    import json

    info = json.loads((built["index"] / "index.json").read_text())
    assert info["format"] == 4 and info["query_words"] > 0
    expected = search_cli.search(built["index"], text="red circle", k=5)

    def no_file(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a text query read the vector file")

    monkeypatch.setattr(search_cli.WordVectors, "load", no_file)
    assert search_cli.search(built["index"], text="red circle", k=5) == expected
    with pytest.raises(search_cli.VectorsError, match=r"no word vector for \['zeppelin'\] among"):
        search_cli.search(built["index"], text="red zeppelin", k=5)
    monkeypatch.undo()
    with pytest.raises(search_cli.VectorsError, match=r"no word vector for \['zeppelin'\]"):
        search_cli.search(built["index"], text="zeppelin", vectors=info["vectors_path"])


def test_an_index_folder_and_its_images_can_move(built: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    moved_index = tmp_path / "elsewhere" / "idx"
    shutil.copytree(built["index"], moved_index)
    before = search_cli.search(built["index"], text="green", k=4)
    assert search_cli.search(moved_index, text="green", k=4) == before
    images = tmp_path / "photos"
    shutil.copytree(built["images"].parent, images)
    moved = search_cli.search(moved_index, text="green", k=4, images_root=str(images))
    assert [(r, s) for r, s, _ in moved] == [(r, s) for r, s, _ in before]
    assert all(Path(p).is_file() and Path(p).is_relative_to(images) for _, _, p in moved)
    proc = run_module("lit_devise.search", "--index", str(moved_index), "--text", "green",
                      "--k", "2", "--images-root", str(images))  # fmt: skip
    assert proc.returncode == 0 and all(str(images) in p for _, _, p in parse(proc.stdout))


def test_an_id_that_leaves_the_indexed_folder_is_refused(
    built: dict[str, Any], tmp_path: Path
) -> None:
    import json
    import shutil

    tampered = tmp_path / "idx"
    shutil.copytree(built["index"], tampered)
    meta = json.loads((tampered / "images" / "index.json").read_text())
    meta["ids"] = ["../../../../etc/passwd"] * len(meta["ids"])
    (tampered / "images" / "index.json").write_text(json.dumps(meta))
    proc = run("lit_devise.search", "--index", str(tampered), "--text", "red", "--k", "2")
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout
    assert proc.stderr.strip() == (  # the whole stderr of a real process: no warning, no log line
        "error: image id '../../../../etc/passwd' leaves the indexed folder; the index is damaged"
    )


def test_search_out_is_written_exactly_where_asked(built: dict[str, Any], tmp_path: Path) -> None:
    """`--out DIR` must not write DIR.png and report DIR: a directory or a name without a picture
    suffix is refused before the search, and a good name is written as given."""
    base = ["lit_devise.search", "--index", str(built["index"]), "--text", "red"]
    for out, message in [
        (tmp_path, "is a directory; give a file name"),
        (tmp_path / "grid", "expected a file name ending in one of .png"),
        (tmp_path / "a.txt" / "grid.png", "is not a directory"),
    ]:
        if out.name == "grid.png":
            out.parent.write_text("a file, not a folder")
        proc = run_module(*base, "--out", str(out))
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and message in err[0], proc.stderr
        assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # nothing else written
    target = tmp_path / "deep" / "grid.svg"
    proc = run_module(*base, "--out", str(target))
    assert proc.returncode == 0 and f"grid: {target}" in proc.stderr
    assert target.read_bytes().lstrip().startswith(b"<?xml")
    assert sorted(p.name for p in target.parent.iterdir()) == ["grid.svg"]  # no temporary left


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--k", "0"], "argument --k: 0 is out of range: expected an integer in [1, 10000]"),
        (["--k", "nan"], "argument --k: 'nan' is not an integer"),
        (["--k", "100000"], "argument --k: 100000 is out of range"),
        (["--target", "nouns"], "argument --target: invalid choice: 'nouns'"),
    ],
)
def test_search_flags_are_checked_in_one_line(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    """Refused while parsing, before the index (here a folder without one) is read."""
    proc = run_module("lit_devise.search", "--index", str(tmp_path), "--text", "red", *flags)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and message in err[0], proc.stderr


def test_index_flags_are_checked_in_one_line(tmp_path: Path) -> None:
    """Refused while parsing, before the checkpoint (here not one) or any image is read."""
    unread = tmp_path / "unread.ckpt"
    unread.write_bytes(b"not a checkpoint")
    base = ["--ckpt", str(unread), "--images", str(tmp_path), "--out", str(tmp_path / "idx")]
    for flags, message in [
        (["--batch-size", "0"], "argument --batch-size: 0 is out of range"),
        (["--query-words", "-1"], "argument --query-words: -1 is out of range"),
        (["--device", "cuda:7"], "argument --device: cuda:7"),
        (["--backend", "annoy"], "argument --backend: invalid choice: 'annoy'"),
        (["--out", str(unread)], f"argument --out: {unread} exists and is not a folder"),
    ]:
        proc = run_module("lit_devise.index", *base, *flags)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and message in err[0], proc.stderr


def test_a_swapped_native_file_is_refused_before_the_native_library(
    built: dict[str, Any], tmp_path: Path
) -> None:
    """The index's faiss file replaced with another index's (a valid file, other vectors):
    refused by its checksum, in one line, before faiss reads it."""
    import shutil

    tampered = tmp_path / "idx"
    shutil.copytree(built["index"], tampered)
    shutil.copy(tampered / "labels" / "faiss.index", tampered / "images" / "faiss.index")
    proc = run_module("lit_devise.search", "--index", str(tampered), "--text", "red", "--k", "2")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"error: {tampered / 'images'} is not a usable index: {tampered / 'images' / 'index.json'}"
        f": {tampered / 'images' / 'faiss.index'} does not match the checksum recorded when it "
        "was written (changed or damaged); rebuild it"
    ]


def test_an_images_root_that_is_not_a_folder_is_refused(
    built: dict[str, Any], tmp_path: Path
) -> None:
    """Results under a folder that does not exist would be paths to nothing."""
    proc = run_module("lit_devise.search", "--index", str(built["index"]), "--text", "red",
                      "--images-root", str(tmp_path / "moved_nowhere"))  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (
        f"error: --images-root {tmp_path / 'moved_nowhere'} is not a folder; give where the "
        "images are"
    )


def test_a_file_name_with_a_newline_stays_on_its_result_line(
    built: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images" / "red_circle"
    images.mkdir(parents=True)
    source = sorted((built["images"] / "red_circle").glob("*.png"))
    for i, name in enumerate(["odd\nname.png", "tab\there.png", "plain.png"]):
        (images / name).write_bytes(source[i].read_bytes())
    out = tmp_path / "idx"
    assert (
        index_cli.main(["--ckpt", str(built["ckpt"]), "--images", str(tmp_path), "--out", str(out)])
        == 0
    )
    capsys.readouterr()
    assert search_cli.main(["--index", str(out), "--text", "red circle", "--k", "3"]) == 0
    rows = parse(capsys.readouterr().out)
    assert len(rows) == 3  # one line per result, whatever the names hold
    names = sorted(Path(path).name for _, _, path in rows)
    assert names == ["odd\\nname.png", "plain.png", "tab\\there.png"]


def test_image_queries_refuse_a_checkpoint_other_than_the_indexs(
    built: dict[str, Any], tmp_path: Path, tiny_run: dict[str, Any]
) -> None:
    """An index records its checkpoint's size and SHA-256: a file replaced since (or another
    one given with --ckpt) would embed the query into another space without a word."""
    import json
    import shutil

    image = str(sorted((built["images"] / "red_circle").glob("*.png"))[0])
    copy = tmp_path / "same.ckpt"
    shutil.copy(built["ckpt"], copy)  # the same file elsewhere: fine
    expected = search_cli.search(built["index"], image=image, k=3)
    assert search_cli.search(built["index"], image=image, k=3, ckpt=str(copy)) == expected
    index = tmp_path / "idx"
    shutil.copytree(built["index"], index)
    info = json.loads((index / "index.json").read_text())
    info["ckpt"] = str(copy)
    (index / "index.json").write_text(json.dumps(info))
    copy.write_bytes(Path(tiny_run["ckpt"]).read_bytes())  # replaced since the index was built
    for kwargs in ({}, {"ckpt": str(tiny_run["ckpt"])}):
        with pytest.raises(CheckpointError, match="is not the one this index was built with"):
            search_cli.search(index, image=image, k=3, **kwargs)
    proc = run_module("lit_devise.search", "--index", str(index), "--image", image, "--k", "2")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: checkpoint {copy} is not the one this index was built")
    del info["ckpt_digest"]  # an index of an earlier format
    info["format"] = 3
    (index / "index.json").write_text(json.dumps(info))
    with pytest.raises(KnnError, match=r"is an index of format 3 .* rebuild it"):
        search_cli.search(index, text="red", k=3)
