"""The peer toolkit on the same data, machine and wall-clock budget: Joey NMT 2.3.

Installs Joey NMT 2.3 into its own virtual environment on first use (``--venv``, default
``.venv-joey``; the same torch version as this project's), writes the Tatoeba question splits as
Joey's plain files (spaCy-blank tokens, lowercased, one sentence per line), trains the recipe
below until ``--minutes`` of training have passed (counted from Joey's first epoch, so reading
the data and building the vocabularies are not charged, as this project's bench charges the fit
only), stops it with SIGINT as a person would, decodes the test split's distinct French
sentences greedily with the best-validation-BLEU checkpoint, and scores them with this project's
scoring (``lit_seq2seq.bleu.corpus_scores``: every reference of a repeated source).

The recipe (the README's Joey NMT row): word level, length limit 30, bidirectional 2x256 GRU
encoder, 2-layer GRU decoder of 300, Bahdanau attention, input feeding, bridge init, 300-d
embeddings, output tied to the target embedding; dropout 0.15 on the encoder embeddings, 0.25 in
the RNNs (and on the decoder's embeddings, Joey's default), 0.35 on the decoder's hidden
output; xavier init, embeddings normal 0.1; Adam 3e-3 (0.9, 0.999), plateau schedule (patience
2, factor 0.5) on validation BLEU, gradient norm 1.0, no label smoothing; batches of 125
sentences; validation once per epoch.

Tokens/s count target tokens (eos included, as this project's bench counts them) over the
wall clock from Joey's first epoch to the interrupt, validation included: Joey's own logged
"Tokens per Sec" counts the seconds inside training batches only. The last line is one JSON
object: ``test_bleu``, ``bleu_signature``, ``train_tokens_per_s``, ``train_seconds``,
``epochs`` (epochs begun), ``steps``, ``joeynmt``, ``device``, ``seed``, ``minutes_budget``,
``model_dir``.

    python bench/peer_joey.py --minutes 15 [--venv .venv-joey] [--out logs/bench/peer_joey]
        [--data ../shared/data/fra-eng] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lit_seq2seq.bleu import corpus_scores
from lit_seq2seq.corpus import ReadStats, TsvCorpus
from lit_seq2seq.evaluate import grouped_pairs
from lit_seq2seq.tokenizer import Tokenizer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "fra-eng"
JOEY = "joeynmt==2.3.0"
SPLITS = ("questions.train.tsv", "questions.valid.tsv", "questions.test.tsv")
BATCH = 125
MAX_LENGTH = 30
# Joey 2.3 passes verbose= to ReduceLROnPlateau, which torch 2.14 no longer takes: the one shim.
SHIM = """import runpy, sys
import torch.optim.lr_scheduler as schedulers
_Plateau = schedulers.ReduceLROnPlateau
class ReduceLROnPlateau(_Plateau):
    def __init__(self, *args, verbose=None, **kwargs):
        super().__init__(*args, **kwargs)
schedulers.ReduceLROnPlateau = ReduceLROnPlateau
sys.argv[0] = "joeynmt"
runpy.run_module("joeynmt", run_name="__main__")
"""


def ensure_joey(venv: Path) -> Path:
    """The virtual environment's python with Joey NMT installed (created on first use)."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import joeynmt.training, joeynmt.prediction"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"peer: installing {JOEY} into {venv} (first use; a few minutes)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    # joeynmt.helpers imports importlib_metadata, which its package does not declare.
    packages = [JOEY, torch_pin, "importlib-metadata"]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    subprocess.run(check, check=True, capture_output=True)
    return python


def write_splits(data: Path, out: Path) -> tuple[list[str], list[list[str]]]:
    """Joey's plain files under ``out``: ``train``/``dev`` pairs as tokenised, lowercased
    lines, and ``test`` the test split's distinct French sentences (with a first reference, which
    Joey wants but this scoring does not use). Returns the test references grouped."""
    fr, en = Tokenizer("fr", lowercase=True), Tokenizer("en", lowercase=True)
    out.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train"), ("valid", "dev")):
        pairs = list(TsvCorpus(data / f"questions.{split}.tsv", ["fr", "en"]).pairs(ReadStats()))
        sources = [" ".join(t) for t in fr.pipe([p[0] for p in pairs])]
        targets = [" ".join(t) for t in en.pipe([p[1] for p in pairs])]
        (out / f"{name}.fr").write_text("\n".join(sources) + "\n", encoding="utf-8")
        (out / f"{name}.en").write_text("\n".join(targets) + "\n", encoding="utf-8")
    sources, references, _ = grouped_pairs(data / "questions.test.tsv", ["fr", "en"])
    tokens = [" ".join(t) for t in fr.pipe(sources)]
    first = [" ".join(t) for t in en.pipe([refs[0] for refs in references])]
    (out / "test.fr").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    (out / "test.en").write_text("\n".join(first) + "\n", encoding="utf-8")
    return sources, references


def epoch_size(data_dir: Path) -> tuple[int, int]:
    """Batches and target tokens (eos included, as Joey counts them) of one epoch after Joey's
    length filter (both sides 1 to MAX_LENGTH tokens)."""
    src = (data_dir / "train.fr").read_text(encoding="utf-8").splitlines()
    tgt = (data_dir / "train.en").read_text(encoding="utf-8").splitlines()
    kept = [
        len(t.split()) + 1
        for s, t in zip(src, tgt, strict=True)
        if 1 <= len(s.split()) <= MAX_LENGTH and 1 <= len(t.split()) <= MAX_LENGTH
    ]
    return -(-len(kept) // BATCH), sum(kept)


def joey_config(data_dir: Path, model_dir: Path, validation_freq: int, seed: int) -> str:
    side = {"max_length": MAX_LENGTH, "min_length": 1, "lowercase": True, "level": "word",
            "voc_min_freq": 1, "voc_limit": 40000}  # fmt: skip
    config = {
        "name": "tatoeba_questions_peer",
        "joeynmt_version": "2.3.0",
        "model_dir": str(model_dir),
        "use_cuda": torch.cuda.is_available(),  # the same machine as this project's run
        "fp16": False,
        "random_seed": seed,
        "data": {
            "train": str(data_dir / "train"),
            "dev": str(data_dir / "dev"),
            "test": str(data_dir / "test"),
            "dataset_type": "plain",
            "src": {"lang": "fr", **side},
            "trg": {"lang": "en", **side},
        },
        "testing": {
            "beam_size": 1,
            "batch_size": 100,
            "eval_metrics": ["bleu"],
            "sacrebleu_cfg": {"tokenize": "none"},
        },
        "training": {
            "optimizer": "adam",
            "adam_betas": [0.9, 0.999],
            "learning_rate": 3.0e-3,
            "learning_rate_min": 1.0e-8,
            "clip_grad_norm": 1.0,
            "label_smoothing": 0.0,
            "batch_size": BATCH,
            "batch_type": "sentence",
            "scheduling": "plateau",
            "patience": 2,
            "decrease_factor": 0.5,
            "early_stopping_metric": "bleu",
            "epochs": 1000,
            "validation_freq": validation_freq,
            "logging_freq": validation_freq,  # Joey wants validation_freq divisible by it
            "overwrite": True,
            "shuffle": True,
            "keep_best_ckpts": 1,
            "print_valid_sents": [],
        },
        "model": {
            "initializer": "xavier_uniform",
            "bias_initializer": "zeros",
            "embed_initializer": "normal",
            "embed_init_weight": 0.1,
            "tied_softmax": True,
            "encoder": {
                "type": "recurrent",
                "rnn_type": "gru",
                "hidden_size": 256,
                "bidirectional": True,
                "num_layers": 2,
                "dropout": 0.25,
                "embeddings": {"embedding_dim": 300, "dropout": 0.15},
            },
            "decoder": {
                "type": "recurrent",
                "rnn_type": "gru",
                "hidden_size": 300,
                "num_layers": 2,
                "dropout": 0.25,
                "hidden_dropout": 0.35,
                "input_feeding": True,
                "init_hidden": "bridge",
                "attention": "bahdanau",
                "embeddings": {"embedding_dim": 300},
            },
        },
    }
    import yaml

    # YAML as Joey reads it (yaml.safe_load): JSON's 1e-08 would load as a string there, since
    # YAML 1.1 floats need a dot; safe_dump writes 1.0e-08.
    return yaml.safe_dump(config, sort_keys=False)


STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def log_time(line: str) -> float:
    """Seconds since the epoch of a Joey log line (``2026-12-05 18:00:00,123 - INFO - ...``)."""
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()


def answer_sigint() -> None:
    """In Joey's process before it starts: SIGINT back to its default. A shell starts background
    jobs (``cmd &``, ``nohup``) with SIGINT ignored and children inherit that, so Joey would
    never see the interrupt that ends its budget and would train on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def train_for(
    python: Path, config: Path, log: Path, minutes: float, start_limit: float = 1800
) -> None:
    """Run ``joeynmt train`` and send SIGINT ``minutes`` after its first epoch begins; Joey then
    saves its weights and exits. Joey is killed if this process fails or is interrupted, or if
    no epoch has begun after ``start_limit`` seconds."""
    shim = config.parent / "joey_shim.py"
    shim.write_text(SHIM, encoding="utf-8")
    cmd = [str(python), str(shim), "train", str(config), "--skip-test"]
    launched = time.monotonic()
    with (config.parent / "train.stdout").open("w") as stdout:
        proc = subprocess.Popen(
            cmd, stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=answer_sigint
        )
        try:
            started = None
            while proc.poll() is None:
                time.sleep(1.0)
                if started is None and log.is_file():
                    if "EPOCH 1" in log.read_text("utf-8", errors="replace"):
                        started = time.monotonic()
                    elif time.monotonic() - launched > start_limit:
                        raise SystemExit(f"error: joeynmt began no epoch in {start_limit:.0f} s")
                if started is not None and time.monotonic() - started >= minutes * 60:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=600)
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode not in (0, -signal.SIGINT, 130):
        text = (config.parent / "train.stdout").read_text("utf-8", errors="replace")
        tail = " | ".join(text.splitlines()[-5:])
        raise SystemExit(f"error: joeynmt train failed ({proc.returncode}): {tail}")


def throughput(log: Path, per_epoch: int, epoch_tokens: int) -> dict[str, Any]:
    """Target tokens trained per wall-clock second, from Joey's log: the seconds from the
    first epoch to the interrupt; the tokens of each finished epoch (Joey logs them) plus, for
    the interrupted one, its steps times an epoch's tokens per step."""
    lines = [x for x in log.read_text("utf-8", errors="replace").splitlines() if STAMP.match(x)]
    start = next((log_time(x) for x in lines if x.endswith("EPOCH 1")), None)
    if start is None:
        raise SystemExit(f"error: {log} shows no epoch of training")
    # the interrupt, or (Joey stopped by itself at its minimum learning rate) its last line
    end_line = next((x for x in lines if "Interrupt at epoch" in x), lines[-1])
    logged = [int(m.group(1)) for x in lines if (m := re.search(r"num\. of tokens: (\d+)", x))]
    steps = [int(m.group(1)) for x in lines if (m := re.search(r"Step: *(\d+)", x))]
    interrupted = re.search(r"Interrupt at epoch (\d+), step (\d+)", end_line)
    epochs, total_steps = (
        (int(interrupted.group(1)), int(interrupted.group(2)))
        if interrupted
        else (len(logged), max(steps, default=len(logged) * per_epoch))
    )
    done_steps = len(logged) * per_epoch
    tokens = sum(logged) + max(total_steps - done_steps, 0) * epoch_tokens / per_epoch
    seconds = log_time(end_line) - start
    return {
        "train_tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
        "train_seconds": round(seconds, 1),
        "epochs": epochs,
        "steps": total_steps,
    }


def check_splits(data: Path) -> None:
    """Refuse, before any training, a folder without the fixed question splits."""
    missing = [n for n in SPLITS if not (data / n).is_file()]
    if missing:
        raise SystemExit(f"error: {data} lacks {missing} (the fixed question splits)")


def run_peer(
    minutes: float, out: Path, venv: Path, data: Path = SHARED, seed: int = 42
) -> dict[str, Any]:
    """Install if needed, train for ``minutes`` on the splits in ``data``, decode the test
    split and score it."""
    check_splits(data)
    python = ensure_joey(venv)
    out.mkdir(parents=True, exist_ok=True)
    data_dir, model_dir = out / "data", out / "model"
    sources, references = write_splits(data, data_dir)
    config = out / "config.yaml"
    per_epoch, epoch_tokens = epoch_size(data_dir)
    config.write_text(joey_config(data_dir, model_dir, per_epoch, seed), "utf-8")
    train_for(python, config, model_dir / "train.log", minutes)
    hyp = out / "hyp"
    shim = out / "joey_shim.py"
    subprocess.run([str(python), str(shim), "test", str(config), "--output-path", str(hyp)],
                   check=True, capture_output=True)  # fmt: skip
    hypotheses = (out / "hyp.test").read_text("utf-8").splitlines()
    if len(hypotheses) != len(sources):
        raise SystemExit(f"error: joeynmt wrote {len(hypotheses)} lines for {len(sources)}")
    scores = corpus_scores(hypotheses, references)
    version = subprocess.run([str(python), "-c", "import joeynmt; print(joeynmt.__version__)"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    return {
        "test_bleu": scores["bleu"],
        "bleu_signature": scores["bleu_signature"],
        **throughput(model_dir / "train.log", per_epoch, epoch_tokens),
        "joeynmt": version,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "seed": seed,
        "minutes_budget": minutes,
        "model_dir": str(model_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training budget")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv-joey")
    parser.add_argument("--out", type=Path, default=Path("logs/bench/peer_joey"))
    parser.add_argument("--data", type=Path, default=SHARED, help="folder of the question splits")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    print(json.dumps(run_peer(args.minutes, out, args.venv, args.data, args.seed)))


if __name__ == "__main__":
    main()
