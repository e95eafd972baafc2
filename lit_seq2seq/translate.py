"""Translate French questions with a trained checkpoint.

    python -m lit_seq2seq.translate --ckpt CKPT [--beam K] [--batch-size N] [--device cpu]
        [--attention-png OUT.png] [SENTENCE ...]

Reads one sentence per line from stdin when no sentence is given and writes exactly one English
line per input line, in order (an empty line for an empty input). Lines are translated in batches
of up to ``--batch-size``: whatever stdin has ready is batched, and each batch is printed (and
flushed) as soon as it is translated, so a pipe streams and an interactive session answers every
line. The checkpoint carries the vocabularies, tokenizer settings and detokenizer, so nothing else
is needed; the output is natural text ("why is the doctor's black car here?").

Every line ending counts (``\n``, ``\r\n``, a lone ``\r``); a byte-order mark, invisible and
control characters are dropped. A line that is not UTF-8 or is over 10,000 characters is not
translated: it gets an empty output line and an ``error: line N: ...`` line on stderr, the other
lines are translated as usual, and the exit status is 1. A line none of whose words the model
knows gets a warning on stderr.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from lit_common import cli
from lit_common.cli import ArgumentParser, output_file
from lit_common.errors import InputError
from lit_common.ranges import Int, Real
from lit_common.text import BOM, decode, split_lines, undecodable
from lit_seq2seq.dataset import pad_batch
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.plots import save_attention_png
from lit_seq2seq.search import beam_search, greedy
from lit_seq2seq.tokenizer import MAX_CHARS, Tokenizer, normalize
from lit_seq2seq.vocab import Vocab


@dataclass
class Translation:
    """One translated sentence.

    Attributes:
        text: the detokenised translation ("" for an empty input).
        source: the source tokens the model read, eos included.
        tokens: the output tokens, eos excluded.
        attention: (output steps, source length) weights, or None without attention.
        unknown: source tokens the model's French vocabulary lacks (read as ``_unk_``).
    """

    text: str
    source: list[str]
    tokens: list[str]
    attention: torch.Tensor | None
    unknown: int = 0


class Translator:
    """Tokenise, encode, decode a batch at a time, and detokenise, with a trained module.

    Args:
        module: a module restored with ``Seq2SeqModule.from_checkpoint``.
        beam: beam size; 1 is greedy decoding.
        alpha: beam search length penalty exponent.
        max_len: most output tokens of a sentence; default twice its source length plus ten.
        device: where the network runs (``cpu``, ``cuda``, ``cuda:1`` ...).
        attention: keep beam search's attention weights (greedy decoding always has them).
    """

    def __init__(
        self,
        module: Seq2SeqModule,
        beam: int = 1,
        alpha: float = 1.0,
        max_len: int | None = None,
        device: str | torch.device = "cpu",
        attention: bool = True,
    ) -> None:
        assert module.net is not None and module.translation is not None
        self.device = torch.device(device)
        self.net = module.net.eval().to(self.device)
        info = module.translation
        self.tokenizer = Tokenizer(info["src_lang"], lowercase=info["lowercase"])
        self.src_vocab, self.tgt_vocab = Vocab(info["src_vocab"]), Vocab(info["tgt_vocab"])
        self.detokenizer = Detokenizer.from_dict(info.get("detokenizer"))
        self.beam, self.alpha, self.max_len = beam, alpha, max_len
        self.attention = attention

    @torch.no_grad()
    def __call__(self, sentences: Sequence[str]) -> list[Translation]:
        """Translate ``sentences`` as one batch; the result is in the same order."""
        tokenized = list(self.tokenizer.pipe(sentences))
        results = [Translation("", [], [], None) for _ in sentences]
        todo = [i for i, tokens in enumerate(tokenized) if tokens]
        if not todo:
            return results
        ids = [torch.tensor(self.src_vocab.encode(tokenized[i])) for i in todo]
        src, lengths = pad_batch(ids, self.src_vocab.pad_idx)
        src = src.to(self.device)
        if self.beam == 1:
            out = greedy(self.net, src, lengths, self.max_len)
            best = [self._until_eos(row) for row in out.tokens.tolist()]
            attns = [
                out.attention[j, : len(b) + 1].cpu() if out.attention is not None else None
                for j, b in enumerate(best)
            ]
        else:
            best, attns = beam_search(
                self.net, src, lengths, self.beam, self.max_len, self.alpha, self.attention
            )
            attns = [a.cpu() if a is not None else None for a in attns]
        for j, i in enumerate(todo):
            words = self.tgt_vocab.decode(best[j])
            source = [*tokenized[i], "_eos_"]
            attention = attns[j][:, : len(source)] if attns[j] is not None else None
            unknown = ids[j].eq(self.src_vocab.unk_idx).sum().item()
            results[i] = Translation(self.detokenizer(words), source, words, attention, unknown)
        return results

    def _until_eos(self, row: list[int]) -> list[int]:
        eos = self.tgt_vocab.eos_idx
        return row[: row.index(eos)] if eos in row else row


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


# The decoding flags' valid values, shared with evaluate.py. A beam of 256 over a 10k-word
# vocabulary already scores 2.5M candidates per sentence and step; more is a typo.
BEAM, ALPHA, MAX_LEN, BATCH = Int(1, 256), Real(0.0, 10.0), Int(1, 10_000), Int(1, 65_536)


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(description="Translate French to English with a checkpoint.")
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint from train.py")
    parser.add_argument("--beam", type=BEAM.arg(), default=1, help=f"beam size (1: greedy); {BEAM}")
    parser.add_argument(
        "--alpha", type=ALPHA.arg(), default=1.0, help=f"beam length penalty exponent; {ALPHA}"
    )
    parser.add_argument(
        "--max-len",
        type=MAX_LEN.arg(),
        default=None,
        help="most output tokens (default: twice the source length plus ten)",
    )
    parser.add_argument(
        "--batch-size", type=BATCH.arg(), default=64, help="sentences decoded together"
    )
    parser.add_argument("--device", type=cli.device, default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--attention-png", type=output_file(), default=None, help="write heatmaps to this file"
    )
    parser.add_argument("sentences", nargs="*", help="French sentences (default: stdin lines)")
    args = parser.parse_args(argv)
    device, err = args.device, sys.stderr
    draw = args.attention_png is not None
    try:
        module = Seq2SeqModule.from_checkpoint(args.ckpt)
        translate = Translator(module, args.beam, args.alpha, args.max_len, device, attention=draw)
    except InputError as error:  # CheckpointError and every other bad input
        print(f"error: {error}", file=err)
        return 2
    batches = (
        fixed_batches(args.sentences, args.batch_size)
        if args.sentences
        else stdin_batches(sys.stdin.buffer, args.batch_size)
    )
    drawn: list[tuple[list[str], list[str], torch.Tensor]] = []
    lines = failed = unknown = 0
    try:
        for batch in batches:
            results = iter(translate([line.text for line in batch if line.problem is None]))
            for line in batch:
                lines += 1
                if line.problem is not None:  # one output line per input line, even so
                    failed += 1
                    print()
                    print(f"error: line {line.number}: {line.problem}; not translated", file=err)
                    continue
                result = next(results)
                print(result.text)
                if result.source and result.unknown == len(result.source) - 1:
                    unknown += 1
                    print(
                        f"warning: line {line.number}: none of its {result.unknown} words is in "
                        "the model's French vocabulary",
                        file=err,
                    )
                if result.attention is not None and len(drawn) < 8:
                    words = [*result.tokens, "_eos_"][: result.attention.size(0)]  # eos if emitted
                    drawn.append((result.source, words, result.attention))
            sys.stdout.flush()
    except OSError as error:
        print(f"error: reading the input failed after line {lines} ({error})", file=err)
        return 2
    if args.attention_png is not None:
        if drawn:
            save_attention_png(drawn, args.attention_png)
        else:
            print("note: no attention to draw (model without attention)", file=err)
    if failed or unknown:
        print(
            f"note: {lines} lines: {failed} not translated (error lines above, an empty line "
            f"each in the output), {unknown} without a known word",
            file=err,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
