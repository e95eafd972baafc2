"""Score a checkpoint on a file of sentence pairs (sacreBLEU on spaCy tokens, ``bleu.py``).

    python -m lit_seq2seq.evaluate --ckpt CKPT --pairs FILE.tsv [--beam N] [--alpha A]
        [--batch-size N] [--device cpu] [--columns fr en] [--hypotheses OUT.txt]

Each distinct French sentence of ``FILE.tsv`` is translated once (the translate CLI's decoding, in
length-sorted batches) and scored against all of its English references (``bleu.py``: spaCy English
tokens, lowercased, sacreBLEU with ``tokenize="none"``; chrF on the lowercased text). The last line
printed is one JSON object: ``bleu``, ``bleu_signature``, ``chrf``, ``chrf_signature``,
``sentences`` (distinct sources scored), ``pairs`` (lines read), ``references`` (most per source),
``beam``, ``seconds`` and ``sentences_per_s`` (tokenising, decoding and detokenising).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from lit_common import cli
from lit_common.errors import InputError
from lit_seq2seq.bleu import corpus_scores
from lit_seq2seq.corpus import CorpusError, ReadStats, TsvCorpus
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.translate import ALPHA, BATCH, BEAM
from lit_seq2seq.translator import Translator


def grouped_pairs(path: Path, columns: Sequence[str]) -> tuple[list[str], list[list[str]], int]:
    """Distinct French sentences in order of first occurrence, their references, and pairs read."""
    stats = ReadStats()
    refs: dict[str, list[str]] = {}
    for fr, en in TsvCorpus(path, columns).pairs(stats):
        refs.setdefault(fr, []).append(en)
    if not refs:
        raise CorpusError(f"{path}: no sentence pairs ({stats.summary()})")
    return list(refs), list(refs.values()), stats.kept


def translate_all(
    translator: Translator, sentences: Sequence[str], batch_size: int
) -> tuple[list[str], float]:
    """Translations in input order and the seconds they took; batches of similar lengths."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].split()))
    out = [""] * len(sentences)
    start = time.perf_counter()
    for k in range(0, len(order), batch_size):
        chunk = order[k : k + batch_size]
        for i, result in zip(chunk, translator([sentences[i] for i in chunk]), strict=True):
            out[i] = result.text
    return out, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="checkpoint from train.py")
    parser.add_argument("--pairs", required=True, type=Path, help="french<TAB>english file")
    parser.add_argument("--columns", nargs="+", default=["fr", "en"], help="the file's columns")
    parser.add_argument("--beam", type=BEAM.arg(), default=1, help=f"beam size (1: greedy); {BEAM}")
    parser.add_argument(
        "--alpha", type=ALPHA.arg(), default=1.0, help=f"beam length penalty exponent; {ALPHA}"
    )
    parser.add_argument(
        "--batch-size", type=BATCH.arg(), default=100, help="sentences decoded together"
    )
    parser.add_argument("--device", type=cli.device, default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--hypotheses", type=cli.output_file(None), help="also write the translations here"
    )
    args = parser.parse_args(argv)
    try:
        sources, references, n_pairs = grouped_pairs(args.pairs, args.columns)
        module = Seq2SeqModule.from_checkpoint(args.ckpt)
        translator = Translator(module, args.beam, args.alpha, device=args.device, attention=False)
    except InputError as err:  # CorpusError, CheckpointError and every other bad input
        print(f"error: {err}", file=sys.stderr)
        return 2
    hypotheses, seconds = translate_all(translator, sources, args.batch_size)
    if args.hypotheses is not None:
        args.hypotheses.write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    result = corpus_scores(hypotheses, references)
    result |= {
        "pairs": n_pairs,
        "beam": args.beam,
        "seconds": round(seconds, 3),
        "sentences_per_s": round(len(sources) / max(seconds, 1e-9), 1),
        "checkpoint": str(args.ckpt),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
