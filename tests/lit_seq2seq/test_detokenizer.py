"""The detokenizer: rules learned from spaCy's whitespace, natural text, a round trip."""

from __future__ import annotations

from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.tokenizer import Tokenizer

ENGLISH = [
    "Why is the doctor's black car here?",
    "Why didn't you tell me?",
    "How many twenty-one year olds are there?",
    "What's gonna happen to us?",
    "Who are you, and what do you want?",
    "Where's the ball?",
    "Where are you going?",
    "Why can't we go home?",
]


def test_learns_from_the_training_targets_and_writes_natural_text() -> None:
    tokenizer = Tokenizer("en")
    spaced = list(tokenizer.pipe_spaced(ENGLISH))
    detok = Detokenizer.learn(spaced, min_count=1)
    assert {"?", "'s", "n't", ",", "na"} <= detok.attach_left
    assert "here" not in detok.attach_right, "no space before '?' says nothing about 'here'"
    tokens = tokenizer("Why is the doctor's black car here?")
    assert detok(tokens) == "why is the doctor's black car here?"
    for sentence in ENGLISH:  # re-tokenising the text gives the same tokens
        tokens = tokenizer(sentence)
        assert tokenizer(detok(tokens)) == tokens
        assert detok(tokens) == sentence.lower()


def test_rare_tokens_keep_the_defaults_and_the_rules_travel_as_plain_data() -> None:
    detok = Detokenizer.learn([[("hello", False), ("!", False)]], min_count=3)
    assert "!" in detok.attach_left  # seen once: the default rule
    restored = Detokenizer.from_dict(detok.to_dict())
    assert restored.attach_left == detok.attach_left
    assert Detokenizer.from_dict(None)(["where", "is", "it", "?"]) == "where is it?"
    assert Detokenizer()([]) == ""
