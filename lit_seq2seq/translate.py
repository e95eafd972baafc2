"""Translate French questions with a trained checkpoint.

    python -m lit_seq2seq.translate --ckpt CKPT [--beam K] [--attention-png OUT.png] [SENTENCE ...]

Reads one sentence per line from stdin when no sentence is given, and prints one English line per
input line (an empty line for an empty input). The checkpoint carries the vocabularies and tokenizer
settings, so nothing else is needed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from lit_seq2seq.module import CheckpointError, Seq2SeqModule
from lit_seq2seq.plots import save_attention_png
from lit_seq2seq.search import beam_search, greedy
from lit_seq2seq.tokenizer import Tokenizer, detokenize
from lit_seq2seq.vocab import Vocab


class Translator:
    """Tokenise, encode, decode and detokenise with a trained ``Seq2SeqModule``.

    Args:
        module: a module restored with ``Seq2SeqModule.from_checkpoint``.
        beam: beam size; 1 is greedy decoding.
        alpha: beam search length penalty exponent.
        max_len: most output tokens; default twice the training target length limit.
    """

    def __init__(
        self, module: Seq2SeqModule, beam: int = 1, alpha: float = 1.0, max_len: int | None = None
    ) -> None:
        assert module.net is not None and module.translation is not None
        self.net = module.net.eval()
        info = module.translation
        self.tokenizer = Tokenizer(info["src_lang"], lowercase=info["lowercase"])
        self.src_vocab, self.tgt_vocab = Vocab(info["src_vocab"]), Vocab(info["tgt_vocab"])
        self.beam, self.alpha = beam, alpha
        self.max_len = max_len or 2 * int(info["max_tgt_len"])

    @torch.no_grad()
    def __call__(
        self, sentences: Sequence[str]
    ) -> list[tuple[str, list[str], torch.Tensor | None]]:
        """``(translation, source tokens, attention (out_len, src_len) or None)`` per sentence."""
        results: list[tuple[str, list[str], torch.Tensor | None]] = []
        for sentence in sentences:
            tokens = next(iter(self.tokenizer.pipe([sentence])))
            if not tokens:
                results.append(("", [], None))
                continue
            ids = torch.tensor([self.src_vocab.encode(tokens)])
            lengths = torch.tensor([ids.size(1)])
            if self.beam == 1:
                out = greedy(self.net, ids, lengths, self.max_len)
                words = self.tgt_vocab.decode(out.tokens[0].tolist())
                attention = (
                    out.attention[0, : len(words) + 1] if out.attention is not None else None
                )
            else:
                best, attns = beam_search(
                    self.net, ids, lengths, self.beam, self.max_len, self.alpha
                )
                words, attention = self.tgt_vocab.decode(best[0]), attns[0]
            results.append((detokenize(words), [*tokens, "_eos_"], attention))
        return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Translate French to English with a checkpoint.")
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint from train.py")
    parser.add_argument("--beam", type=int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--alpha", type=float, default=1.0, help="beam length penalty exponent")
    parser.add_argument("--max-len", type=int, default=None, help="most output tokens")
    parser.add_argument("--attention-png", type=Path, default=None, help="write heatmaps here")
    parser.add_argument("sentences", nargs="*", help="French sentences (default: stdin lines)")
    args = parser.parse_args(argv)
    if args.beam < 1:
        parser.error(f"--beam {args.beam}: expected >= 1")
    try:
        module = Seq2SeqModule.from_checkpoint(args.ckpt)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    translate = Translator(module, args.beam, args.alpha, args.max_len)
    sentences = args.sentences or [line.rstrip("\n") for line in sys.stdin]
    results = translate(sentences)
    for text, _, _ in results:
        print(text)
    if args.attention_png is not None:
        items = [(src, [*text.split(" "), "_eos_"], a) for text, src, a in results if a is not None]
        if items:
            save_attention_png(items[:8], args.attention_png)
        else:
            print("note: no attention to draw (model without attention)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
