"""Translation data preparation at scale: time, throughput, peak memory and cache size.

Writes a corpus of ``--pairs`` generated French/English questions (the synthetic generator, repeats
allowed: ``synthetic.question_stream``) as a TSV file, with a 2,000-pair valid and test file of
other seeds, then prepares it in a fresh process the way training does (``Preparation``: read and
tokenise in shards with ``--workers`` processes, count, build vocabularies, write the id arrays)
with word vectors off (``kind=none``: fastText training is a separate cost, see README), and
prints one JSON object last: ``pairs``, ``seconds`` (the preparation's wall clock),
``pairs_per_s``, ``peak_rss_mb`` (the preparing process's peak resident memory),
``worker_peak_rss_mb`` (the largest tokenising worker's), ``cache_mb`` (the prepared cache on
disk), ``workers``, ``vocab_sizes``, ``corpus_mb``.

    python bench/prepare_scale.py --pairs 5000000 [--workers 2] [--out logs/bench/prepare_scale]

The generated corpus is kept in ``--out`` and used again by a later run with the same size; the
cache is written to a fresh folder each run (removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

EVAL_PAIRS = 2000


def write_corpus(path: Path, pairs: int, seed: int) -> Path:
    """``pairs`` generated pairs as ``french<TAB>english`` lines (kept once written whole)."""
    from lit_seq2seq.synthetic import question_stream

    if path.is_file():
        return path
    partial = path.with_suffix(".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "w", encoding="utf-8") as f, Progress(transient=True) as progress:
        task = progress.add_task(f"writing {path.name}", total=pairs)
        for n, (fr, en) in enumerate(itertools.islice(question_stream(seed), pairs), 1):
            f.write(f"{fr}\t{en}\n")
            if n % 10_000 == 0:
                progress.update(task, completed=n)
    partial.rename(path)
    return path


def prepare(train: Path, valid: Path, test: Path, cache: Path, workers: int) -> dict[str, Any]:
    """In this (fresh) process: prepare the corpus, return the measurements."""
    from lit_seq2seq.corpus import TsvCorpus
    from lit_seq2seq.prepare import Preparation
    from lit_seq2seq.wordvecs import VectorSource

    def corpus(path: Path) -> TsvCorpus:
        return TsvCorpus(path=str(path), columns=["fr", "en"])

    prep = Preparation(
        corpora={"train": corpus(train), "valid": corpus(valid), "test": corpus(test)},
        cache_root=cache,
        vectors={"src": VectorSource(kind="none"), "tgt": VectorSource(kind="none")},
        n_process=workers,
    )
    start = time.perf_counter()
    prep.run()
    seconds = time.perf_counter() - start
    report = json.loads((prep.cache_path / "report.json").read_text())
    return {
        "pairs": report["splits"]["train"]["pairs"],
        "seconds": round(seconds, 1),
        "pairs_per_s": round(report["splits"]["train"]["pairs"] / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "cache_mb": round(
            sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20, 1
        ),
        "workers": workers,
        "vocab_sizes": report["vocab_sizes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, required=True, help="training pairs to generate")
    parser.add_argument("--workers", type=int, default=2, help="tokenising processes")
    parser.add_argument("--out", type=Path, default=Path("logs/bench/prepare_scale"))
    parser.add_argument("--keep", action="store_true", help="keep the prepared cache")
    parser.add_argument(
        "--child", nargs=4, metavar=("TRAIN", "VALID", "TEST", "CACHE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.pairs < 1 or args.workers < 1:
        parser.error("--pairs and --workers must be at least 1")
    if args.child:  # the measured process
        train, valid, test, cache = map(Path, args.child)
        print(json.dumps(prepare(train, valid, test, cache, args.workers)))
        return
    corpora = args.out / "corpora"
    train = write_corpus(corpora / f"train-{args.pairs}.tsv", args.pairs, seed=0)
    valid = write_corpus(corpora / f"valid-{EVAL_PAIRS}.tsv", EVAL_PAIRS, seed=1)
    test = write_corpus(corpora / f"test-{EVAL_PAIRS}.tsv", EVAL_PAIRS, seed=2)
    cache = Path(tempfile.mkdtemp(prefix=f"cache-{args.pairs}-", dir=args.out))
    try:
        child = [
            sys.executable,
            __file__,
            "--pairs",
            str(args.pairs),
            "--workers",
            str(args.workers),
            "--child",
            str(train),
            str(valid),
            str(test),
            str(cache),
        ]
        proc = subprocess.run(child, stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"error: the preparation failed (status {proc.returncode}); see above")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    result["corpus_mb"] = round(train.stat().st_size / 2**20, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
