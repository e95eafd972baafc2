"""The translate CLI from a checkpoint: arguments, natural text, stdin streamed in batches, beam
search, attention heatmaps, bad flags."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.search import beam_search
from lit_seq2seq.translate import Translator, main
from tests.conftest import REPO_ROOT
from tests.helpers import run_module

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

QUESTIONS = ["Où est la maison du médecin ?", "Qui voit la voiture rouge ?"]


def cli(*args: str) -> list[str]:
    """A real process: streaming through a pipe is what only one shows; the other CLI tests run
    ``main`` in this process (tests.helpers.run_module)."""
    return [sys.executable, "-m", "lit_seq2seq.translate", *args]


def test_cli_prints_one_natural_line_per_sentence(
    tiny_run: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    png = tmp_path / "attention.png"
    args = ["--ckpt", str(tiny_run["ckpt"]), "--attention-png", str(png), *QUESTIONS, ""]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2] == ""
    assert all(line and line.isascii() for line in lines[:2]), lines  # English words
    assert not any(f" {p}" in line for line in lines for p in ("?", "'s", ",")), lines
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_reads_stdin_and_beam_search(tiny_run: dict[str, Any]) -> None:
    lines = "\n".join([*QUESTIONS, "", QUESTIONS[0]]) + "\n"
    proc = run_module(
        "lit_seq2seq.translate", "--ckpt", str(tiny_run["ckpt"]), "--beam", "3", "--batch-size",
        "2", stdin=lines.encode(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == 4 and out[2] == "" and out[0] == out[3]


def test_stdin_is_streamed_line_by_line(tiny_run: dict[str, Any]) -> None:
    """The answer to a line comes before stdin is closed: a pipe or a person can wait on it."""
    proc = subprocess.Popen(
        cli("--ckpt", str(tiny_run["ckpt"])),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    answers: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: answers.put(proc.stdout.readline()), daemon=True).start()
    proc.stdin.write(QUESTIONS[0] + "\n")
    proc.stdin.flush()
    try:
        first = answers.get(timeout=120)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert first.strip() and proc.returncode == 0


def test_an_undecodable_line_costs_no_other_line(tiny_run: dict[str, Any]) -> None:
    data = (QUESTIONS[0] + "\n").encode() + b"caf\xe9 ?\n" + (QUESTIONS[1] + "\n").encode()
    proc = run_module("lit_seq2seq.translate", "--ckpt", str(tiny_run["ckpt"]), stdin=data)
    assert proc.returncode == 1, proc.stderr  # 1: a line was not translated
    out = proc.stdout.splitlines()
    assert len(out) == 3 and out[0] and out[1] == "" and out[2]
    assert "error: line 2: byte 0xe9 at column 4 is not UTF-8" in proc.stderr


def test_beam_one_is_greedy_and_batching_changes_nothing(tiny_run: dict[str, Any]) -> None:
    module = Seq2SeqModule.from_checkpoint(tiny_run["ckpt"])
    sentences = [*QUESTIONS, "Pourquoi le chat noir regarde-t-il la voiture ?"]
    greedy = [t.text for t in Translator(module, beam=1)(sentences)]
    assert [t.text for t in Translator(module, beam=1, alpha=0.0)(sentences)] == greedy
    assert [Translator(module)([s])[0].text for s in sentences] == greedy
    translator = Translator(module, beam=1)
    for sentence, expected in zip(sentences, greedy, strict=True):
        tokens = translator.tokenizer(sentence)
        ids = torch.tensor([translator.src_vocab.encode(tokens)])
        best, _ = beam_search(translator.net, ids, torch.tensor([ids.size(1)]), 1)
        assert translator.detokenizer(translator.tgt_vocab.decode(best[0])) == expected
    beam = Translator(module, beam=4)
    assert [t.text for t in beam(sentences)] == [beam([s])[0].text for s in sentences]


def test_cli_rejects_a_missing_checkpoint_and_bad_flags(tmp_path: Path, capsys: Any) -> None:
    assert main(["--ckpt", str(tmp_path / "nope.ckpt"), "bonjour"]) == 2
    assert "does not exist" in capsys.readouterr().err
    unread = tmp_path / "unread.ckpt"  # the flags are refused before any checkpoint is read
    unread.write_bytes(b"not a checkpoint")
    for flags, message in (
        (["--batch-size", "0"], "argument --batch-size: 0 is out of range"),
        (["--beam", "0"], "argument --beam: 0 is out of range"),
        (["--max-len", "-3"], "argument --max-len: -3 is out of range"),
    ):
        proc = run_module("lit_seq2seq.translate", "--ckpt", str(unread), *flags, "bonjour")
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    if not torch.cuda.is_available():
        proc = run_module("lit_seq2seq.translate", "--ckpt", str(unread), "--device", "cuda", "x")
        assert proc.returncode == 2 and "CUDA is not available" in proc.stderr
