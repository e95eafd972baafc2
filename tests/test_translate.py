"""The translate CLI from a checkpoint: arguments, stdin, beam search, attention heatmaps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.search import beam_search
from lit_seq2seq.translate import Translator, main
from tests.conftest import REPO_ROOT

QUESTIONS = ["Où est la maison du médecin ?", "Qui voit la voiture rouge ?"]


def test_cli_prints_one_line_per_sentence(
    tiny_run: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    png = tmp_path / "attention.png"
    assert main(["--ckpt", str(tiny_run["ckpt"]), "--attention-png", str(png), *QUESTIONS, ""]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2] == ""
    assert all(line and line.isascii() for line in lines[:2]), lines  # English words
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_reads_stdin_and_beam_search(tiny_run: dict[str, Any]) -> None:
    cmd = [
        sys.executable,
        "-m",
        "lit_seq2seq.translate",
        "--ckpt",
        str(tiny_run["ckpt"]),
        "--beam",
        "3",
    ]
    proc = subprocess.run(
        cmd, input="\n".join(QUESTIONS) + "\n", capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2


def test_beam_one_is_greedy(tiny_run: dict[str, Any]) -> None:
    module = Seq2SeqModule.from_checkpoint(tiny_run["ckpt"])
    greedy = [t for t, _, _ in Translator(module, beam=1)(QUESTIONS)]
    assert [t for t, _, _ in Translator(module, beam=1, alpha=0.0)(QUESTIONS)] == greedy
    beam1 = [t for t, _, _ in _beam(module, QUESTIONS)]
    assert beam1 == greedy


def _beam(module: Seq2SeqModule, sentences: list[str]) -> list[tuple[str, list[str], Any]]:
    """One-beam search called directly, bypassing the Translator's greedy path."""
    translator = Translator(module, beam=1)
    out = []
    for sentence in sentences:
        tokens = next(iter(translator.tokenizer.pipe([sentence])))
        ids = torch.tensor([translator.src_vocab.encode(tokens)])
        lengths = torch.tensor([ids.size(1)])
        best, _ = beam_search(translator.net, ids, lengths, 1, translator.max_len)
        out.append((" ".join(translator.tgt_vocab.decode(best[0])), tokens, None))
    return out


def test_cli_rejects_a_missing_checkpoint(tmp_path: Path, capsys: Any) -> None:
    assert main(["--ckpt", str(tmp_path / "nope.ckpt"), "bonjour"]) == 2
    assert "does not exist" in capsys.readouterr().err
