"""Word vectors: .vec text files, fastText .bin, training on the corpus, embedding init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lit_seq2seq.wordvecs import (
    VectorsError,
    VectorSource,
    degenerate,
    embedding_matrix,
    lookup,
    read_vec,
    spread,
    train_fasttext,
    zeroed_allocations,
)
from tests.helpers import write_vec


def test_read_vec_keeps_only_wanted_words(tmp_path: Path) -> None:
    path = write_vec(tmp_path / "v.vec", {"chat": [1, 2, 3], "chien": [4, 5, 6], "l'": [0, 0, 1]})
    found = read_vec(path, {"chat", "l'", "absent"}, dim=3)
    assert sorted(found) == ["chat", "l'"]
    assert found["chat"].tolist() == [1, 2, 3] and found["chat"].dtype == np.float32
    assert read_vec(write_vec(tmp_path / "n.vec", {"a": [1.0, 2.0]}, header=False), {"a"}, 2)


def test_read_vec_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write_vec(tmp_path / "v.vec", {"chat": [1, 2, 3]})
    with pytest.raises(VectorsError, match="dimension 3 but the embedding has 4"):
        read_vec(path, {"chat"}, dim=4)
    bad = tmp_path / "bad.vec"
    bad.write_text("2 3\nchat 1 2 3\nchien 1 2\n")
    with pytest.raises(VectorsError, match=r"bad\.vec:3: expected a word and 3 numbers, got 2"):
        read_vec(bad, {"chien"}, dim=3)
    with pytest.raises(VectorsError, match="does not exist"):
        read_vec(tmp_path / "missing.vec", set(), 3)
    with pytest.raises(VectorsError, match="kind='glove' unknown"):
        VectorSource(kind="glove")


def test_fasttext_bin_and_trained_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["le", "chat", "noir", "?", "où", "est", "chien", "la", "maison", "qui"]
    sentences = [list(rng.choice(words, size=6)) for _ in range(300)]
    source = VectorSource(kind="train", epochs=2, bucket=1000)
    found = lookup(source, ["_pad_", "le", "chat", "zzz"], 64, sentences)
    assert sorted(found) == ["chat", "le"] and found["le"].shape == (64,)

    train_fasttext(sentences, ["chat"], dim=64, epochs=1, bucket=1000, save_to=tmp_path / "m.bin")
    found = lookup(
        VectorSource(kind="fasttext", path=str(tmp_path / "m.bin")), ["chat", "zzz"], 64, []
    )
    assert list(found) == ["chat"]
    with pytest.raises(VectorsError, match="dimension 64 but the embedding has 16"):
        lookup(VectorSource(kind="fasttext", path=str(tmp_path / "m.bin")), ["chat"], 16, [])


def test_trained_vectors_are_reproducible_on_a_dirty_heap() -> None:
    # fastText 0.9.3 with one thread leaves 90% of its input matrix uninitialised: on a heap that
    # held other data, runs differed and often stopped with NaN (10 of 20 at dim 64, 1,000
    # buckets) until train_fasttext zeroed new allocations.
    with zeroed_allocations() as zeroed:
        if not zeroed:
            pytest.skip("allocations cannot be zeroed here (glibc malloc needed)")
    rng = np.random.default_rng(1)
    words = ["le", "chat", "noir", "?", "où", "est", "chien", "la", "maison", "qui"]
    sentences = [list(rng.choice(words, size=6)) for _ in range(300)]
    runs = []
    for _ in range(4):
        junk = [np.random.default_rng(i).random(300_000) * 1e30 for i in range(8)]
        del junk  # freed, non-zero memory that the next allocations may reuse
        runs.append(train_fasttext(sentences, words, dim=16, epochs=3, bucket=1000, attempts=1))
    for run in runs[1:]:
        assert all(np.array_equal(run[w], runs[0][w]) for w in words)


def test_embedding_matrix_scales_found_rows_and_reports_coverage() -> None:
    itos = ["_bos_", "_pad_", "_eos_", "_unk_", "le", "chat", "qu'", "zzz"]
    counts = [0, 0, 0, 0, 10, 5, 3, 2]
    rng = np.random.default_rng(0)
    vectors = {w: (0.3 * rng.standard_normal(50)).astype(np.float32) for w in ("le", "chat")}
    matrix, report = embedding_matrix(itos, counts, vectors, 50, scale="auto")
    assert matrix.shape == (8, 50) and (matrix[1] == 0).all()
    assert np.allclose(matrix[4] / vectors["le"], report["scale"])
    assert abs(np.concatenate([matrix[4], matrix[5]]).std() - 1.0) < 0.05
    assert report["found"] == 2 and report["vocab_coverage"] == 0.5
    assert report["token_coverage"] == pytest.approx(15 / 20)
    assert report["top_missing"] == ["qu'", "zzz"]
    lesson, _ = embedding_matrix(itos, counts, vectors, 50, scale=3)
    assert np.allclose(lesson[5], 3 * vectors["chat"])
    assert not np.allclose(lesson[6], 0)  # random row for a missing word


def test_spread_tells_collinear_vectors_from_useful_ones() -> None:
    rng = np.random.default_rng(0)
    useful = rng.standard_normal((500, 64)).astype(np.float32)
    measured = spread(useful)
    assert abs(measured["mean_cosine"]) < 0.02 and measured["effective_rank"] > 40
    assert degenerate(measured, 64) is None
    # What 10 epochs of fastText on 9k questions gives: one shared direction plus a little noise.
    collinear = rng.standard_normal(64) + 0.05 * useful
    measured = spread(collinear)
    assert measured["mean_cosine"] > 0.99 and measured["effective_rank"] < 8
    assert "mean pairwise cosine 0.99" in str(degenerate(measured, 64))
    low_rank = rng.standard_normal((500, 2)) @ rng.standard_normal((2, 64))
    assert "effective rank" in str(degenerate(spread(low_rank), 64))


def test_centering_removes_the_shared_direction_and_the_report_says_so() -> None:
    rng = np.random.default_rng(1)
    itos = ["_bos_", "_pad_", "_eos_", "_unk_", *[f"w{i}" for i in range(300)]]
    counts = [0, 0, 0, 0, *[1] * 300]
    shared = rng.standard_normal(64)
    vectors = {w: (shared + 0.05 * rng.standard_normal(64)).astype(np.float32) for w in itos[4:]}
    _, raw = embedding_matrix(itos, counts, vectors, 64)
    matrix, centred = embedding_matrix(itos, counts, vectors, 64, center=True)
    assert raw["degenerate"] and raw["spread"]["mean_cosine"] > 0.99
    assert centred["degenerate"] is None and abs(centred["spread"]["mean_cosine"]) < 0.05
    assert abs(matrix[4:].std() - 1.0) < 0.05 and abs(matrix[4:].mean()) < 0.05
    _, empty = embedding_matrix(itos, counts, {}, 64)
    assert empty["spread"] is None and empty["degenerate"] is None
