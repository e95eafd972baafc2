"""The evaluate CLI: one segment per distinct source with all its references, JSON fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lit_seq2seq.evaluate import grouped_pairs, main

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

PAIRS = (
    "Où est la maison du médecin ?\tWhere is the doctor's house?\n"
    "Qui voit la voiture rouge ?\tWho sees the red car?\n"
    "Où est la maison du médecin ?\tWhere's the doctor's house?\n"
    "Pourquoi le chat noir regarde-t-il la voiture ?\tWhy is the black cat looking at the car?\n"
)


def test_repeated_sources_are_one_segment_with_all_references(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text(PAIRS)
    sources, references, n_pairs = grouped_pairs(path, ["fr", "en"])
    assert n_pairs == 4 and len(sources) == 3
    assert references[0] == ["Where is the doctor's house?", "Where's the doctor's house?"]


def test_cli_prints_bleu_signature_chrf_and_speed(
    tiny_run: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text(PAIRS)
    hyps = tmp_path / "hyps.txt"
    for beam in ("1", "3"):
        args = ["--ckpt", str(tiny_run["ckpt"]), "--pairs", str(path), "--beam", beam]
        assert main([*args, "--hypotheses", str(hyps)]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["sentences"] == 3 and result["pairs"] == 4 and result["references"] == 2
        assert result["bleu_signature"].startswith("nrefs:var|case:lc|eff:no|tok:none")
        assert 0 <= result["bleu"] <= 100 and 0 <= result["chrf"] <= 100
        assert result["sentences_per_s"] > 0 and result["beam"] == int(beam)
        assert len(hyps.read_text().splitlines()) == 3


def test_cli_errors_are_one_line(tiny_run: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    assert main(["--ckpt", str(tiny_run["ckpt"]), "--pairs", str(tmp_path / "none.tsv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "does not exist" in err[0]
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n")
    assert main(["--ckpt", str(tiny_run["ckpt"]), "--pairs", str(empty)]) == 2
    assert "no sentence pairs" in capsys.readouterr().err
