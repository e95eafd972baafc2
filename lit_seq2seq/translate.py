"""Translate French questions with a trained checkpoint.

    python -m lit_seq2seq.translate --ckpt CKPT [--beam K] [--batch-size N] [--device cpu]
        [--attention-png OUT.png] [SENTENCE ...]

Reads one sentence per line from stdin when no sentence is given and writes exactly one English
line per input line, in order (an empty line for an empty input). Lines are translated in batches
of up to ``--batch-size``: whatever stdin has ready is batched, and each batch is printed (and
flushed) as soon as it is translated, so a pipe streams and an interactive session answers every
line. The checkpoint carries the vocabularies, tokenizer settings and detokenizer, so nothing else
is needed; the output is natural text ("why is the doctor's black car here?").
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from lit_common.errors import InputError
from lit_seq2seq.dataset import pad_batch
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.plots import save_attention_png
from lit_seq2seq.search import beam_search, greedy
from lit_seq2seq.tokenizer import Tokenizer
from lit_seq2seq.vocab import Vocab


@dataclass
class Translation:
    """One translated sentence.

    Attributes:
        text: the detokenised translation ("" for an empty input).
        source: the source tokens the model read, eos included.
        tokens: the output tokens, eos excluded.
        attention: (output steps, source length) weights, or None without attention.
    """

    text: str
    source: list[str]
    tokens: list[str]
    attention: torch.Tensor | None


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
            results[i] = Translation(self.detokenizer(words), source, words, attention)
        return results

    def _until_eos(self, row: list[int]) -> list[int]:
        eos = self.tgt_vocab.eos_idx
        return row[: row.index(eos)] if eos in row else row


def stdin_batches(stream: BinaryIO, batch_size: int) -> Iterator[list[str]]:
    """Lines of ``stream`` in batches: waits for the first line of a batch, then adds the lines
    already available (up to ``batch_size``), so nothing waits for input that has not come.

    Undecodable bytes are replaced (U+FFFD), so one bad line cannot cost the others. A reader
    thread keeps at most a few batches ahead; an error reading the stream ends the batches and is
    raised after the lines read before it.
    """
    lines: queue.Queue[str | None] = queue.Queue(maxsize=4 * batch_size)
    failed: list[BaseException] = []

    def read() -> None:
        try:
            for raw in stream:
                lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
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


def fixed_batches(sentences: Sequence[str], batch_size: int) -> Iterable[list[str]]:
    return (list(sentences[i : i + batch_size]) for i in range(0, len(sentences), batch_size))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Translate French to English with a checkpoint.")
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint from train.py")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--alpha", type=float, default=1.0, help="beam length penalty exponent")
    parser.add_argument("--max-len", type=int, default=None, help="most output tokens")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences decoded together")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--attention-png", type=Path, default=None, help="write heatmaps here")
    parser.add_argument("sentences", nargs="*", help="French sentences (default: stdin lines)")
    args = parser.parse_args(argv)
    if args.beam < 1:
        parser.error(f"--beam {args.beam}: expected >= 1")
    if args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size}: expected >= 1")
    if args.max_len is not None and args.max_len < 1:
        parser.error(f"--max-len {args.max_len}: expected >= 1")
    try:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available here")
    except RuntimeError as err:
        parser.error(f"--device {args.device}: {err}")
    try:
        module = Seq2SeqModule.from_checkpoint(args.ckpt)
    except InputError as err:  # CheckpointError and every other bad input
        print(f"error: {err}", file=sys.stderr)
        return 2
    draw = args.attention_png is not None
    translate = Translator(module, args.beam, args.alpha, args.max_len, device, attention=draw)
    batches = (
        fixed_batches(args.sentences, args.batch_size)
        if args.sentences
        else stdin_batches(sys.stdin.buffer, args.batch_size)
    )
    drawn: list[tuple[list[str], list[str], torch.Tensor]] = []
    try:
        for batch in batches:
            for result in translate(batch):
                print(result.text)
                if result.attention is not None and len(drawn) < 8:
                    words = [*result.tokens, "_eos_"][: result.attention.size(0)]  # eos if emitted
                    drawn.append((result.source, words, result.attention))
            sys.stdout.flush()
    except OSError as err:
        print(f"error: reading the input failed after the lines above ({err})", file=sys.stderr)
        return 2
    if args.attention_png is not None:
        if drawn:
            save_attention_png(drawn, args.attention_png)
        else:
            print("note: no attention to draw (model without attention)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
