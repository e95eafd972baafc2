"""Text lines from users' files and streams, as the models should see them.

Corpus files, stdin and label lists arrive with byte-order marks, Windows or old-Mac line
endings, NULs, zero-width spaces, bidi marks and other invisible characters, and now and then a
line that is not UTF-8 at all. ``split_lines`` splits a binary stream on every line ending
(``\\n``, ``\\r\\n`` and a lone ``\\r``); ``decode`` strips a byte-order mark and raises on bytes
that are not UTF-8 (the caller skips and counts that line; the others are never lost); ``clean``
drops invisible format characters and turns control characters into spaces, so ``"où\\u200b"``
and ``"où"`` are one word and a NUL cannot reach a tokenizer or a vocabulary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import BinaryIO

BOM = "\ufeff"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls, not \t or \n


MAX_LINE_BYTES = 1 << 20  # more is no line of text: its head is kept, the rest skipped


def split_lines(stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of a binary stream without their endings; ``\\n``, ``\\r\\n`` and a lone
    ``\\r`` all end a line (Python's universal newlines, applied to bytes). Reads the stream
    line by line, so a pipe's lines come out as they arrive. A line over ``max_bytes`` (a
    stream without newlines: ``/dev/zero``, a binary file) is cut to its first ``max_bytes + 1``
    bytes and the rest is read and dropped, so memory stays bounded and the caller sees that the
    line is too long."""
    while raw := stream.readline(max_bytes + 1):
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while (rest := stream.readline(max_bytes + 1)) and not rest.endswith(b"\n"):
                pass
        body = raw[:-1] if raw.endswith(b"\n") else raw
        body = body[:-1] if body.endswith(b"\r") else body
        if b"\r" in body:
            yield from body.split(b"\r")
        else:
            yield body


def decode(raw: bytes) -> str:
    """UTF-8 text of one line without a leading byte-order mark; ``UnicodeDecodeError`` for
    bytes that are not UTF-8 (Latin-1, UTF-16, binary)."""
    return raw.decode("utf-8").removeprefix(BOM)


def undecodable(raw: bytes) -> str:
    """Why ``raw`` is not UTF-8, in a few words: ``byte 0xe9 at column 4 is not UTF-8``."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"byte 0x{raw[err.start]:02x} at column {err.start + 1} is not UTF-8"
    return "valid UTF-8"


def clean(text: str) -> str:
    """``text`` without invisible format characters (zero-width spaces and joiners, byte-order
    marks, bidi marks, soft hyphens: Unicode category Cf) or lone surrogates (undecodable
    bytes of a command-line argument), and with control characters (NUL, escape, CR, C1
    controls) as spaces; tabs and line feeds are left to the caller."""
    if text.isascii() and text.isprintable():
        return text
    text = _CONTROL.sub(" ", text)
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cs"))


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BREAKS = re.compile(r"[\\\n\r\t\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    """``text`` safe for one line of line-oriented output: backslash, tab, line breaks (also
    U+2028/U+2029), control characters and lone surrogates (bytes of a file name that are not
    UTF-8) become escapes (``\\n``, ``\\x07``, ``\\u2028``, ``\\udcff``), so a file name can
    neither split a result in two nor fail to print; other characters stay as they are."""

    def escape(match: re.Match[str]) -> str:
        ch = match.group()
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _BREAKS.sub(escape, text)
