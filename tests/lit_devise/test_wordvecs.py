"""lit_devise/wordvecs.py: label lookup for multi-word and comma-separated names, misses, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lit_devise.wordvecs import VectorsError, WordVectors, label_vectors, read_nouns, wanted_words
from tests.helpers import write_vec

TABLE = {
    "tench": [1.0, 0.0, 0.0],
    "garbage": [0.0, 2.0, 0.0],
    "truck": [0.0, 0.0, 4.0],
    "chain_saw": [5.0, 5.0, 5.0],
    "chain": [9.0, 9.0, 9.0],
    "springer": [0.0, 1.0, 1.0],
    "english": [1.0, 1.0, 0.0],
    "Paris": [7.0, 7.0, 7.0],
}


@pytest.fixture
def vectors(tmp_path: Path) -> WordVectors:
    names = [
        "tench, Tinca tinca",
        "garbage truck",
        "chain saw, chainsaw",
        "English springer",
        "Paris",
        "Tinca tinca",
        "kite",
    ]
    return WordVectors.load(write_vec(tmp_path / "v.vec", TABLE), wanted_words(names))


def test_first_name_found_as_one_entry_wins(vectors: WordVectors) -> None:
    np.testing.assert_array_equal(vectors.label("tench, Tinca tinca"), [1, 0, 0])
    # "chain saw" is one entry (chain_saw), not the mean of chain and saw
    np.testing.assert_array_equal(vectors.label("chain saw, chainsaw"), [5, 5, 5])


def test_multi_word_name_is_the_mean_of_its_words(vectors: WordVectors) -> None:
    np.testing.assert_allclose(vectors.label("garbage truck"), [0, 1, 2])
    np.testing.assert_allclose(vectors.label("English springer"), [0.5, 1, 0.5])


def test_case_and_misses(vectors: WordVectors) -> None:
    np.testing.assert_array_equal(vectors.label("Paris"), [7, 7, 7])  # cased file, any-case query
    assert vectors.label("Tinca tinca") is None and vectors.label("kite") is None
    labels = label_vectors(["a", "b", "c"], ["tench", "kite", "garbage truck"], vectors)
    assert labels.ids == ["a", "c"] and labels.dropped == ["b"]
    assert labels.vectors.shape == (2, 3)


def test_text_query_averages_words_and_names_missing_ones(vectors: WordVectors) -> None:
    np.testing.assert_allclose(vectors.query("garbage truck"), [0, 1, 2])
    with pytest.raises(VectorsError, match=r"no word vector for \['boat'\]"):
        vectors.query("truck boat")


def test_vec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(VectorsError, match="does not exist"):
        WordVectors.load(tmp_path / "missing.vec", ["a"])
    bad = tmp_path / "bad.vec"
    bad.write_text("2 3\ntench 1 0 0\ntruck 1 0\n")
    with pytest.raises(VectorsError, match=r"bad.vec:3: expected a word and 3 numbers"):
        WordVectors.load(bad, ["truck"])
    with pytest.raises(VectorsError, match="none of the 2 words"):
        WordVectors.load(write_vec(tmp_path / "v.vec", TABLE, header=False), ["boat", "kite"])


def test_fasttext_bin_vocabulary_words_only(tmp_path: Path) -> None:
    import fasttext

    from lit_seq2seq.wordvecs import train_fasttext

    rng = np.random.default_rng(0)
    words = ["the", "garbage", "truck", "drives", "past", "church", "red", "boat", "a", "dog"]
    sentences = [list(rng.choice(words, size=8)) for _ in range(400)]
    train_fasttext(sentences, words, dim=64, epochs=2, bucket=1000, save_to=tmp_path / "m.bin")
    model = fasttext.load_model(str(tmp_path / "m.bin"))
    vectors = WordVectors.load(tmp_path / "m.bin", ["garbage", "truck", "zeppelin"])
    assert vectors.dim == 64 and "truck" in vectors and "zeppelin" not in vectors
    np.testing.assert_allclose(
        vectors.label("garbage truck"),
        (model.get_word_vector("garbage") + model.get_word_vector("truck")) / 2,
        rtol=1e-5,
    )


def test_noun_list(tmp_path: Path) -> None:
    path = tmp_path / "nouns.tsv"
    path.write_text("n1\tdog\nn2\tgreat_white_shark\n\n")
    assert read_nouns(path) == (["n1", "n2"], ["dog", "great white shark"])
    path.write_text("n1 dog\n")
    with pytest.raises(VectorsError, match=r"nouns.tsv:1: expected `wnid<TAB>lemma`"):
        read_nouns(path)


def test_noun_lists_with_bom_crlf_and_bad_bytes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A byte-order mark, CRLF endings and a Latin-1 line: the good lines are read, the bad one
    is skipped and counted; a file with no UTF-8 line at all is one clear error."""
    nouns = tmp_path / "nouns.tsv"
    nouns.write_bytes(b"\xef\xbb\xbfn01\tred_ball\r\nn02\tcaf\xe9\r\nn03\tblue\xe2\x80\x8b_box\r\n")
    assert read_nouns(nouns) == (["n01", "n03"], ["red ball", "blue box"])
    assert "1 lines not UTF-8, skipped (e.g. line 2)" in caplog.text
    nouns.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(VectorsError, match="no line is UTF-8 text"):
        read_nouns(nouns)
