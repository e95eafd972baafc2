"""Text lines as users' files and streams bring them: every line ending, byte-order marks,
invisible and control characters, bytes that are not UTF-8."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lit_common.text import clean, decode, one_line, split_lines, undecodable

# Lines without line-ending characters, any other code point (NUL, controls, emoji, RTL...).
LINE = st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=30)


@given(lines=st.lists(LINE, max_size=8), ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_every_line_ending_splits_and_nothing_is_lost(lines: list[str], ending: str) -> None:
    data = "".join(line + ending for line in lines).encode()
    got = [decode(raw) for raw in split_lines(io.BytesIO(data))]
    assert got == [line.removeprefix("\ufeff") for line in lines]  # a leading BOM goes


@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_clean_leaves_no_control_or_format_character_and_is_idempotent(text: str) -> None:
    cleaned = clean(text)
    assert clean(cleaned) == cleaned
    for char in cleaned:
        category = unicodedata.category(char)
        assert category != "Cf"
        assert category != "Cc" or char in "\t\n\r"


@given(raw=st.binary(max_size=40))
def test_decode_either_gives_text_or_names_the_byte(raw: bytes) -> None:
    try:
        text = decode(raw)
    except UnicodeDecodeError:
        reason = undecodable(raw)
        assert reason.startswith("byte 0x") and "is not UTF-8" in reason
    else:
        assert not text.startswith("\ufeff") or raw.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xef\xbb\xbfbonjour", "bonjour"),  # a BOM
        (b"o\xc3\xb9\xe2\x80\x8b est-il ?", "o\u00f9\u200b est-il ?"),  # zero-width: clean's job
    ],
)
def test_decode_examples(raw: bytes, expected: str) -> None:
    assert decode(raw) == expected


def test_clean_examples() -> None:
    assert clean("où\u200b est\u00ad-il\u202e ?") == "où est-il ?"
    assert clean("a\x00b\x1bc\x85d") == "a b c d"
    assert clean("tab\tstays") == "tab\tstays"


def test_split_lines_examples() -> None:
    data = b"a\r\nb\rc\n\nd"
    assert list(split_lines(io.BytesIO(data))) == [b"a", b"b", b"c", b"", b"d"]


def test_a_line_without_end_is_cut_and_memory_stays_bounded() -> None:
    """/dev/zero or a binary file on stdin: the head of the line is kept (the caller sees it is
    too long), the rest read and dropped, and the next line comes out as usual."""
    data = b"a" * 50 + b"\nok\r\n" + b"b" * 25
    got = list(split_lines(io.BytesIO(data), max_bytes=10))
    assert got == [b"a" * 11, b"ok", b"b" * 11]


def test_one_line_escapes_whatever_would_break_a_line() -> None:
    assert one_line("a\nb\r\nc") == "a\\nb\\r\\nc"
    assert one_line("tab\there\\x") == "tab\\there\\\\x"  # a backslash too: escapes stay readable
    assert one_line("bell\x07 c1\x85 ls\u2028ps\u2029") == "bell\\x07 c1\\x85 ls\\u2028ps\\u2029"
    assert one_line("été 写真.jpg") == "été 写真.jpg"  # printable text is left alone
    assert one_line("bad\udcff.jpg") == "bad\\udcff.jpg"  # a non-UTF-8 byte of a file name
    assert "\n" not in one_line("".join(map(chr, range(0x30))))
