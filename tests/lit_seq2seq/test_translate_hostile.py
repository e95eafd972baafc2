"""Hostile input through the public translate command, one table row per class of input: the
exit status, the one-line messages, and that every other line is still translated, in order."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lit_common.text import split_lines
from lit_seq2seq.translate import main
from tests.conftest import REPO_ROOT

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

GOOD = "Où est la maison du médecin ?"


def translate(
    ckpt: Path, data: bytes, monkeypatch: pytest.MonkeyPatch, capsys: Any, *flags: str
) -> tuple[int, list[str], list[str]]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["--ckpt", str(ckpt), *flags])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err.strip().splitlines()


@pytest.fixture(scope="module")
def expected(tiny_run: dict[str, Any]) -> str:
    from lit_seq2seq.module import Seq2SeqModule
    from lit_seq2seq.translator import Translator

    return Translator(Seq2SeqModule.from_checkpoint(tiny_run["ckpt"]))([GOOD])[0].text


G = GOOD.encode()
# (name, stdin bytes, exit status, output lines that must equal the good translation,
#  output lines that must be empty, what stderr must say)
STDIN_CASES = [
    (
        "latin-1 line",
        G + b"\ncaf\xe9 ?\n" + G + b"\n",
        1,
        [0, 2],
        [1],
        "line 2: byte 0xe9 at column 4",
    ),
    (
        "utf-16 line",
        G + b"\n" + "où ?".encode("utf-16") + b"\n" + G,
        1,
        [0, 2],
        [1],
        "line 2: byte 0xff",
    ),
    ("binary garbage", b"\x80\x81\x82\n" + G + b"\n", 1, [1], [0], "line 1: byte 0x80 at column 1"),
    ("bom", b"\xef\xbb\xbf" + G + b"\n" + G + b"\n", 0, [0, 1], [], None),
    ("crlf", G + b"\r\n" + G + b"\r\n", 0, [0, 1], [], None),
    ("lone cr", G + b"\r" + G + b"\r" + G, 0, [0, 1, 2], [], None),
    ("nul inside", G.replace(b" est", b"\x00 est") + b"\n" + G, 0, [0, 1], [], None),
    ("zero-width", G.replace(b"est", "e\u200bst".encode()) + b"\n", 0, [0], [], None),
    ("bidi marks", "\u202e".encode() + G + b"\n", 0, [0], [], None),
    ("escape codes", b"\x1b[31m" + G + b"\x1b[0m\n", 0, [], [], None),
    ("empty lines", b"\n\n" + G + b"\n\n", 0, [2], [0, 1, 3], None),
    ("only spaces and controls", b" \t\x07\x00\n" + G, 0, [1], [0], None),
    ("no final newline", G, 0, [0], [], None),
    (
        "over 10,000 characters",
        G + b"\n" + b"a" * 10_001 + b"\n" + G,
        1,
        [0, 2],
        [1],
        "line 2: 10,001 characters",
    ),
    ("one word of 10,000 characters", b"x" * 10_000 + b"\n" + G, 0, [1], [], "none of its 1 words"),
    ("unknown words only", b"zzqx wqzzy\n" + G + b"\n", 0, [1], [], "line 1: none of its 2 words"),
    # U+FB2C becomes 3 code points under NFC: 5,000 of them are 15,000 characters to the tokenizer
    (
        "grows past the limit under NFC",
        "\ufb2c".encode() * 5000 + b"\n" + G,
        1,
        [1],
        [0],
        "line 1: 15,000 characters",
    ),
    ("no line end, 2 MB", b"x" * 2_000_000, 1, [], [0], "line 1: 1,048,577 characters"),
]


@pytest.mark.parametrize(
    ("name", "data", "status", "same", "empty", "message"),
    STDIN_CASES,
    ids=[c[0] for c in STDIN_CASES],
)
def test_stdin_line_classes(
    tiny_run: dict[str, Any],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    name: str,
    data: bytes,
    status: int,
    same: list[int],
    empty: list[int],
    message: str | None,
) -> None:
    code, out, err = translate(tiny_run["ckpt"], data, monkeypatch, capsys)
    assert code == status, err
    n_lines = len(list(split_lines(io.BytesIO(data))))
    assert len(out) == n_lines, (out, err)  # one output line per input line, always
    assert all(out[i] == expected for i in same), out
    assert all(out[i] == "" for i in empty), out  # (a traceback would fail the call itself)
    if message is None:
        assert not [e for e in err if e.startswith("error:")], err
    else:
        assert any(message in line for line in err), err
    for line in err:
        assert line.startswith(("error: line ", "warning: line ", "note: ")), line


FLAG_CASES = [
    (["--beam", "0"], "argument --beam: 0 is out of range: expected an integer in [1, 256]"),
    (["--beam", "100000"], "argument --beam: 100000 is out of range"),
    (["--beam", "two"], "argument --beam: 'two' is not an integer"),
    (
        ["--alpha", "nan"],
        "argument --alpha: nan is out of range: expected a finite number in [0, 10]",
    ),
    (["--alpha", "inf"], "argument --alpha: inf is out of range"),
    (["--alpha", "-1"], "argument --alpha: -1 is out of range"),
    (
        ["--max-len", "-3"],
        "argument --max-len: -3 is out of range: expected an integer in [1, 10000]",
    ),
    (["--max-len", "0"], "argument --max-len: 0 is out of range"),
    (["--batch-size", "0"], "argument --batch-size: 0 is out of range"),
    (["--batch-size", "1e9"], "argument --batch-size: '1e9' is not an integer"),
    (["--device", "tpu"], "argument --device: 'tpu' is not a device"),
    (["--attention-png", "."], "argument --attention-png: . is a directory"),
    (["--attention-png", "out"], "argument --attention-png: out: expected a file name ending in"),
]


@pytest.mark.parametrize(("flags", "message"), FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_bad_flags_are_one_line_naming_the_range(
    tiny_run: dict[str, Any], capsys: Any, flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--ckpt", str(tiny_run["ckpt"]), *flags, "bonjour"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err
    assert ": error: " in err[0] and message in err[0] and err[0].endswith("(see --help)"), err


def test_an_undecodable_argument_is_one_error_line(
    tiny_run: dict[str, Any], expected: str, capsys: Any
) -> None:
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python passes such an argv
    assert main(["--ckpt", str(tiny_run["ckpt"]), GOOD, bad, GOOD]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == [expected, "", expected]
    assert "error: line 2: not UTF-8" in out.err


def test_the_command_line_end_to_end(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    """A real process: Latin-1 in the middle of a pipe, a bad flag; no traceback."""
    cmd = [sys.executable, "-m", "lit_seq2seq.translate", "--ckpt", str(tiny_run["ckpt"])]
    proc = subprocess.run(
        cmd, input=G + b"\n\xe9t\xe9\n" + G + b"\n", capture_output=True, cwd=REPO_ROOT
    )
    out = proc.stdout.decode().splitlines()
    assert proc.returncode == 1 and len(out) == 3 and out[0] == out[2] != "" and out[1] == ""
    assert b"Traceback" not in proc.stderr and b"error: line 2:" in proc.stderr
    proc = subprocess.run([*cmd, "--beam", "0"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_device_auto_is_this_machines_device(
    tiny_run: dict[str, Any], expected: str, capsys: Any
) -> None:
    assert main(["--ckpt", str(tiny_run["ckpt"]), "--device", "auto", GOOD]) == 0
    assert capsys.readouterr().out.splitlines() == [expected]
