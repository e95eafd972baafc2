"""Input lines for the translate CLI: decoded one by one, each with the problem that keeps it
from being translated (not UTF-8, too long), and batched as they arrive so a pipe streams."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from lit_common.text import BOM, decode, split_lines, undecodable
from lit_seq2seq.tokenizer import MAX_CHARS, normalize


@dataclass
class Line:
    """One input line: its text, or why it cannot be translated (``problem``)."""

    number: int
    text: str
    problem: str | None = None


def read_line(number: int, raw: bytes | str, max_chars: int = MAX_CHARS) -> Line:
    """``raw`` decoded (a byte-order mark dropped), or a ``Line`` with the problem: bytes that
    are not UTF-8, or over ``max_chars`` characters. Invisible and control characters are left
    to the tokenizer's ``normalize``."""
    if isinstance(raw, str):  # a command-line argument: undecodable bytes are surrogates
        if any("\ud800" <= c <= "\udfff" for c in raw):
            return Line(number, "", "not UTF-8 (an undecodable byte in the argument)")
        text = raw.removeprefix(BOM)
    else:
        try:
            text = decode(raw)
        except UnicodeDecodeError:
            return Line(number, "", undecodable(raw))
    length = len(text) if len(text) > max_chars else len(normalize(text))  # NFC can lengthen
    if length > max_chars:
        return Line(number, "", f"{length:,} characters, over the limit of {max_chars:,}")
    return Line(number, text)


def stdin_batches(
    stream: BinaryIO, batch_size: int, max_chars: int = MAX_CHARS
) -> Iterator[list[Line]]:
    """Lines of ``stream`` in batches: waits for the first line of a batch, then adds the lines
    already available (up to ``batch_size``), so nothing waits for input that has not come.

    Every line ending counts (``\n``, ``\r\n``, a lone ``\r``). A line that is not UTF-8 or is
    too long comes with its ``problem`` and is answered alone, so it cannot cost the others. A
    reader thread keeps at most a few batches ahead; an error reading the stream ends the
    batches and is raised after the lines read before it.
    """
    lines: queue.Queue[Line | None] = queue.Queue(maxsize=4 * batch_size)
    failed: list[BaseException] = []

    def read() -> None:
        try:
            for number, raw in enumerate(split_lines(stream), 1):
                lines.put(read_line(number, raw, max_chars))
        except BaseException as err:  # re-raised in the consuming thread
            failed.append(err)
        finally:
            lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    while True:
        first = lines.get()
        if first is None:
            if failed:
                raise failed[0]
            return
        batch = [first]
        while len(batch) < batch_size:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                lines.put(None)  # seen again by the next get: ends after this batch
                break
            batch.append(line)
        yield batch


def fixed_batches(
    sentences: Sequence[str], batch_size: int, max_chars: int = MAX_CHARS
) -> Iterable[list[Line]]:
    lines = [read_line(i, s, max_chars) for i, s in enumerate(sentences, 1)]
    return (lines[i : i + batch_size] for i in range(0, len(lines), batch_size))
