"""spaCy tokenisation of French and English as the data pipeline uses it."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_common.errors import InputError
from lit_seq2seq.tokenizer import MAX_CHARS, Tokenizer, normalize


@pytest.fixture(scope="module")
def fr() -> Tokenizer:
    return Tokenizer("fr", lowercase=False)


def test_french_elisions_and_hyphens_as_spacy_does(fr: Tokenizer) -> None:
    tokens = fr("Qu'est-ce que l'homme a-t-il dit d'elle aujourd'hui ?")
    assert tokens == [
        "Qu'", "est", "-ce", "que", "l'", "homme", "a", "-t", "-il", "dit", "d'", "elle",
        "aujourd'hui", "?",
    ]  # fmt: skip
    assert fr("Comment vas-tu ?") == ["Comment", "vas", "-", "tu", "?"]  # spaCy splits -tu


def test_tatoeba_spaces_before_punctuation_are_normalised(fr: Tokenizer) -> None:
    assert normalize("Où est la balle\u202f?\u00a0 ") == "Où est la balle ?"
    assert fr("Où est la balle\u202f?") == ["Où", "est", "la", "balle", "?"]
    assert fr("C\u2019est vrai\u00a0!") == ["C'", "est", "vrai", "!"]


def test_lowercase_after_tokenising_and_pipe_keeps_order() -> None:
    en = Tokenizer("en", lowercase=True, batch_size=2)
    texts = ["What's this?", "Where is Paris?", "", "Who are you?"]
    assert list(en.pipe(texts)) == [
        ["what", "'s", "this", "?"],
        ["where", "is", "paris", "?"],
        [],
        ["who", "are", "you", "?"],
    ]
    spaced = next(en.pipe_spaced(["What's this?"]))  # what the detokenizer learns from
    assert spaced == [("what", False), ("'s", True), ("this", False), ("?", False)]


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Tokenizer\\(lang='qq'\\)"):
        Tokenizer("qq")


@given(text=st.text(max_size=60))
@settings(max_examples=150, deadline=None)
def test_any_text_tokenises_to_clean_tokens(fr: Tokenizer, text: str) -> None:
    """Whatever a user types: no exception, no empty, whitespace, control or invisible token,
    and normalising twice changes nothing."""
    assert normalize(normalize(text)) == normalize(text)
    for token in fr(text):
        assert token and not token.isspace()
        assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in token), token


def test_a_text_over_the_limit_is_one_clear_error(fr: Tokenizer) -> None:
    with pytest.raises(InputError, match="over the tokenizer's limit of 10,000"):
        fr("a" * (MAX_CHARS + 1))
