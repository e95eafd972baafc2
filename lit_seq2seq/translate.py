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

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from lit_common import cli
from lit_common.cli import ArgumentParser, output_file
from lit_common.errors import InputError
from lit_common.ranges import Int, Real
from lit_seq2seq.input_lines import fixed_batches, stdin_batches
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.plots import save_attention_png
from lit_seq2seq.translator import Translation, Translator

__all__ = ["ALPHA", "BATCH", "BEAM", "MAX_LEN", "Translation", "Translator", "main"]

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
