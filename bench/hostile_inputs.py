# ruff: noqa: E501  (a table of cases: one per line reads best)
"""Hostile and broken inputs through every entry point: a table of what each one answered.

    python bench/hostile_inputs.py [--out DIR] [--markdown TABLE.md]

Trains a tiny translator and a tiny DeViSE model (about two minutes on 2 CPU cores), builds an
index, then runs each input through the public command: ``train.py`` as a real process, the CLIs
(`lit_seq2seq.translate`, `evaluate`, `download`, `lit_devise.index`, `search`) through the
``main(argv)`` their console scripts call, with stdin, stdout and stderr replaced. Each row
records the exit status and the first error line, and is judged: a traceback, a hang (60 s), an
exit status or message other than expected, or a lost line counts as a failure. The last line
is one JSON object: ``inputs``, ``failures``, ``tracebacks``, ``hangs``, ``by_class``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

TINY_SEQ2SEQ = [
    "data.train.n_pairs=600", "data.batch_size=32", "data.src_vectors.kind=none",
    "data.tgt_vectors.kind=none", "model.net.enc_emb_dim=32", "model.net.enc_hidden=32",
    "model.net.dec_emb_dim=32", "model.net.dec_hidden=32", "model.net.attn_size=32",
    "trainer=cpu", "trainer.max_epochs=1", "logger=csv", "~callbacks.rich_progress_bar",
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
]  # fmt: skip
TINY_DEVISE = [
    "model=devise", "data.synthetic.n_per_class=6", "data.image_size=32", "model.net.hidden=64",
    "trainer=cpu", "trainer.max_epochs=1", "logger=csv", "~callbacks.rich_progress_bar",
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
]  # fmt: skip


@dataclass
class Row:
    cls: str
    command: str
    status: int | str
    said: str
    ok: bool
    why: str = ""


class Hang(Exception):
    pass


def _alarm(*_: Any) -> None:
    raise Hang


def call(main: Callable[[list[str]], int | None], argv: list[str], stdin: bytes = b"") -> tuple:
    """``main(argv)`` with stdin/stdout/stderr replaced: (status, stdout, stderr, traceback)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    tb = ""
    root = logging.getLogger()  # log lines (skips, warnings) go to this call's stderr
    handler, level = logging.StreamHandler(err), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status: int | str = main(argv) or 0
    except SystemExit as exit_:
        code = exit_.code
        if isinstance(code, str):
            err.write(code + "\n")
            status = 1
        else:
            status = code or 0
    except Hang:
        status = "HANG"
    except BaseException:
        status, tb = "TRACEBACK", traceback.format_exc()
    finally:
        signal.alarm(0)
        sys.stdin = old_stdin
        root.removeHandler(handler)
        root.setLevel(level)
    return status, out.getvalue(), err.getvalue(), tb


# What `--device cuda:99` answers: this machine's GPU count, or that it has none.
CUDA_99 = (
    "--device: cuda:99: CUDA sees"
    if torch.cuda.is_available()
    else "--device: cuda:99: CUDA is not available here; use cpu"
)


def judge(
    rows: list[Row],
    cls: str,
    command: str,
    result: tuple,
    status: int,
    expect: str | None,
    check: Callable[[str, str], str] | None = None,
) -> None:
    got, out, err, tb = result
    lines = [line for line in err.strip().splitlines() if line.strip()]
    flagged = ("error", "warning", "skipped", "unreadable", "over the budget")
    said = next((ln for ln in lines if any(f in ln for f in flagged)), "")
    said = said or (out.strip().splitlines() or [""])[-1]
    why = ""
    if tb or "Traceback" in err:
        why = "traceback: " + (tb or err).strip().splitlines()[-1]
    elif got != status:
        why = f"exit {got}, expected {status}"
    elif expect is not None and expect not in err:
        why = f"missing {expect!r}"
    elif check is not None:
        why = check(out, err)
    rows.append(Row(cls, command, got, said[:160], not why, why))


def lines_check(expected: list[str]) -> Callable[[str, str], str]:
    """The output lines, compared with ``expected`` ("*" any non-empty line, "" an empty one)."""

    def check(out: str, _: str) -> str:
        got = out.splitlines()
        if len(got) != len(expected):
            return f"{len(got)} output lines for {len(expected)} input lines"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            if (e == "*" and not g) or (e == "" and g) or (e not in ("*", "") and g != e):
                return f"line {i + 1}: {g!r}"
        return ""

    return check


def train_tiny(out: Path, overrides: list[str]) -> Path:
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={out}",
         f"paths.data_dir={out / 'data'}", *overrides],
        capture_output=True, text=True, cwd=out.parent, timeout=900,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"tiny run failed: {proc.stderr[-2000:]}")
    return next((out / "checkpoints").glob("last.ckpt"))


def picture(path: Path, size: tuple[int, int] = (40, 40), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("logs/bench/hostile"))
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args()
    work = args.out.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    from lit_common.schema import file_digest
    from lit_devise import index as index_cli
    from lit_devise import search as search_cli
    from lit_seq2seq import download as download_cli
    from lit_seq2seq import evaluate as evaluate_cli
    from lit_seq2seq import translate as translate_cli

    start = time.time()
    s2s = train_tiny(work / "seq2seq", TINY_SEQ2SEQ)
    dev = train_tiny(work / "devise", TINY_DEVISE)
    shapes = work / "devise" / "data" / "shapes" / "images"
    index_dir = work / "index"
    assert index_cli.main(["--ckpt", str(dev), "--images", str(shapes), "--out", str(index_dir),
                           "--backend", "hnswlib"]) == 0  # fmt: skip
    print(f"tiny models and index in {time.time() - start:.0f} s", file=sys.stderr)
    rows: list[Row] = []
    T = translate_cli.main

    # -- translate: stdin lines ------------------------------------------------------------
    good = "Où est la maison ?".encode()
    stdin_cases: list[tuple[str, bytes, int, str | None, list[str]]] = [
        ("Latin-1 line", good + b"\ncaf\xe9\n" + good, 1, "line 2: byte 0xe9", ["*", "", "*"]),
        ("UTF-16 text", "où est".encode("utf-16"), 1, "line 1: byte 0xff", [""]),
        ("UTF-16-LE without BOM", "ab".encode("utf-16-le") + b"\n" + good, 0, None, ["*", "*"]),
        ("CESU surrogate bytes", b"\xed\xa0\x80\n" + good, 1, "line 1: byte 0xed", ["", "*"]),
        ("overlong UTF-8", b"\xc0\xaf\n" + good, 1, "line 1: byte 0xc0", ["", "*"]),
        ("lone continuation byte", b"\x80abc\n" + good, 1, "line 1: byte 0x80", ["", "*"]),
        ("truncated UTF-8 at end", good + b"\n\xc3", 1, "line 2: byte 0xc3", ["*", ""]),
        ("PNG bytes as text", (REPO / "bench/figures/stage_bleu.png").read_bytes()[:300], 1,
         "not UTF-8", None),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + good, 0, None, ["*"]),
        ("BOM on every line", b"\xef\xbb\xbf" + good + b"\n\xef\xbb\xbf" + good, 0, None, ["*", "*"]),
        ("CRLF endings", good + b"\r\n" + good + b"\r\n", 0, None, ["*", "*"]),
        ("lone CR endings", good + b"\r" + good + b"\r" + good, 0, None, ["*", "*", "*"]),
        ("mixed endings", good + b"\r\n" + good + b"\r" + good + b"\n", 0, None, ["*"] * 3),
        ("NUL inside", b"o\x00\xc3\xb9 est ?\n", 0, None, ["*"]),
        ("NUL-only line", b"\x00\x00\n" + good, 0, None, ["", "*"]),
        ("ANSI escape codes", b"\x1b[31m" + good + b"\x1b[0m", 0, None, ["*"]),
        ("bell and backspace", b"\x07\x08" + good, 0, None, ["*"]),
        ("C1 control (NEL)", "\u0085".encode() + good, 0, None, ["*"]),
        ("zero-width space", "o\u200bù est ?".encode(), 0, None, ["*"]),
        ("zero-width joiner emoji", "👨\u200d👩 ?".encode(), 0, None, ["*"]),
        ("bidi override", "\u202e".encode() + good, 0, None, ["*"]),
        ("soft hyphen", "mai\u00adson ?".encode(), 0, None, ["*"]),
        ("combining accents (NFD)", "ou\u0300 est ?".encode(), 0, None, ["*"]),
        ("no-break spaces", "où\u00a0est\u202f?".encode(), 0, None, ["*"]),
        ("line separator U+2028", "où\u2028est ?".encode(), 0, None, ["*"]),
        ("tabs", b"o\xc3\xb9\test\t?", 0, None, ["*"]),
        ("emoji only", "😀😀".encode(), 0, "none of its", ["*"]),
        ("Arabic", "أين المنزل؟".encode(), 0, "none of its", ["*"]),
        ("CJK", "家はどこですか".encode(), 0, "none of its", ["*"]),
        ("fullwidth Latin", "ｏù ｅｓｔ".encode(), 0, None, ["*"]),
        ("only punctuation", b"?!?!...", 0, None, ["*"]),
        ("shell metacharacters", b"$(rm -rf /); `id` | && ?", 0, None, ["*"]),
        ("format strings", b"%s %d {0} {} %n ?", 0, None, ["*"]),
        ("HTML", b"<script>alert(1)</script>", 0, None, ["*"]),
        ("empty input", b"", 0, None, []),
        ("only newlines", b"\n\n\n", 0, None, ["", "", ""]),
        ("only spaces", b"   \t  \n", 0, None, [""]),
        ("no final newline", good, 0, None, ["*"]),
        ("10,000 characters", b"a" * 10_000, 0, "none of its 1 words", ["*"]),
        ("10,001 characters", b"a" * 10_001 + b"\n" + good, 1, "10,001 characters", ["", "*"]),
        ("1 MB line", b"ab " * 350_000 + b"\n" + good, 1, "over the limit", ["", "*"]),
        ("3,000 words", b"la " * 3000, 0, None, ["*"]),
        ("1,000 lines", b"\n".join([good] * 1000), 0, None, ["*"] * 1000),
        ("unknown words only", b"zzqx wqzzy", 0, "none of its 2 words", ["*"]),
        ("digits only", b"1234567890", 0, None, ["*"]),
    ]  # fmt: skip
    for name, data, status, expect, expected in stdin_cases:
        check = lines_check(expected) if expected is not None else None
        result = call(T, ["--ckpt", str(s2s)], data)
        judge(rows, "text: translate stdin", f"translate < {name}", result, status, expect, check)
    argv_cases = [
        ("undecodable argument", [b"caf\xe9".decode("utf-8", "surrogateescape")], 1, "not UTF-8"),
        ("empty argument", [""], 0, None),
        ("argument with newline", ["où\nest ?"], 0, None),
        ("argument of 20,000 chars", ["a" * 20_000], 1, "over the limit"),
    ]
    for name, sentences, status, expect in argv_cases:
        result = call(T, ["--ckpt", str(s2s), *sentences])
        answers = ["*" if status == 0 and s else "" for s in sentences]  # "" answers ""
        judge(rows, "text: translate arguments", f"translate '{name}'", result, status, expect,
              lines_check(answers))  # fmt: skip

    # stdin that fails mid-read: a directory
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            raise OSError(5, "Input/output error")

    def broken_main(argv: list[str]) -> int:
        sys.stdin = io.TextIOWrapper(io.BufferedReader(Broken()))
        return T(argv)

    judge(rows, "text: translate stdin", "translate < (a stream whose read fails: EIO)", call(broken_main, ["--ckpt", str(s2s)]),
          2, "reading the input failed")  # fmt: skip

    # -- translate / evaluate: flags ----------------------------------------------------------
    flag_cases = [
        (["--beam", "0"], "--beam: 0 is out of range"),
        (["--beam", "-1"], "--beam: -1 is out of range"),
        (["--beam", "100000"], "--beam: 100000 is out of range"),
        (["--beam", "2.5"], "'2.5' is not an integer"),
        (["--beam", ""], "'' is not an integer"),
        (["--alpha", "nan"], "--alpha: nan is out of range"),
        (["--alpha", "inf"], "--alpha: inf is out of range"),
        (["--alpha=-inf"], "--alpha: -inf is out of range"),
        (["--alpha", "-inf"], "--alpha: expected one argument"),
        (["--alpha", "-1"], "--alpha: -1 is out of range"),
        (["--alpha", "1e308"], "--alpha: 1e308 is out of range"),
        (["--alpha", "x"], "'x' is not a finite number"),
        (["--max-len", "-3"], "--max-len: -3 is out of range"),
        (["--max-len", "0"], "--max-len: 0 is out of range"),
        (["--max-len", "99999999"], "--max-len: 99999999 is out of range"),
        (["--batch-size", "0"], "--batch-size: 0 is out of range"),
        (["--batch-size", "-5"], "--batch-size: -5 is out of range"),
        (["--batch-size", "1e9"], "'1e9' is not an integer"),
        (["--device", "tpu"], "'tpu' is not a device"),
        (["--device", "cuda:99"], CUDA_99),
        (["--device", ""], "--device: '' is not a device"),
        (["--attention-png", str(work)], "is a directory"),
        (["--attention-png", str(work / "noext")], "expected a file name ending in"),
        (["--attention-png", str(work / "x.gif")], "expected a file name ending in"),
        (["--unknown-flag"], "unrecognized arguments"),
    ]
    for flags, expect in flag_cases:
        result = call(T, ["--ckpt", str(s2s), *flags, "bonjour"])
        judge(rows, "numbers/flags: translate", "translate " + " ".join(flags), result, 2, expect)
    judge(rows, "numbers/flags: translate", "translate (no --ckpt)", call(T, ["bonjour"]), 2,
          "the following arguments are required: --ckpt")  # fmt: skip

    # -- checkpoints --------------------------------------------------------------------------
    ckpts = work / "ckpts"
    ckpts.mkdir()
    base = torch.load(s2s, map_location="cpu", weights_only=True)

    def damaged(name: str, change: Callable[[dict], None], original: dict | None = None) -> Path:
        """A copy of ``original`` (the translation checkpoint) changed by ``change``, saved."""
        import copy

        checkpoint = copy.deepcopy(base if original is None else original)
        change(checkpoint)
        path = ckpts / f"{name}.ckpt"
        torch.save(checkpoint, path)
        return path

    first = next(iter(base["state_dict"]))
    (ckpts / "text.ckpt").write_text("hello")
    (ckpts / "empty.ckpt").write_bytes(b"")
    (ckpts / "truncated.ckpt").write_bytes(s2s.read_bytes()[:4000])

    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, ("touch " + str(work / "PWNED"),))

    torch.save({"state_dict": {}, "x": Payload()}, ckpts / "pickle.ckpt")
    ckpt_cases = [
        ("missing file", ckpts / "nope.ckpt", "does not exist"),
        ("a directory", ckpts, "does not exist"),
        ("a text file", ckpts / "text.ckpt", "not a readable checkpoint"),
        ("an empty file", ckpts / "empty.ckpt", "not a readable checkpoint"),
        ("truncated", ckpts / "truncated.ckpt", "not a readable checkpoint"),
        ("code in a pickle", ckpts / "pickle.ckpt", "not a readable checkpoint"),
        ("a DeViSE checkpoint", dev, "not a translation checkpoint"),
        ("vocab without specials", damaged("nospec", lambda c: c["translation"].update(src_vocab=["a"])), "Vocab must start with"),
        ("vocab of numbers", damaged("nums", lambda c: c["translation"].update(tgt_vocab=[1, 2])), "list of strings"),
        ("vocab duplicates", damaged("dup", lambda c: c["translation"]["src_vocab"].append("_unk_")), "duplicate"),
        ("info key missing", damaged("nokey", lambda c: c["translation"].pop("tgt_vocab")), "lacks ['tgt_vocab']"),
        ("info not a dict", damaged("infolist", lambda c: c.update(translation=[1])), "not a dict"),
        ("src_lang a number", damaged("lang", lambda c: c["translation"].update(src_lang=3)), "'src_lang' should be str"),
        ("hparam out of range", damaged("range", lambda c: c["hyper_parameters"]["net"].update(enc_hidden=0)), "enc_hidden=0 is out of range"),
        ("dropout 5", damaged("drop", lambda c: c["hyper_parameters"]["net"].update(out_dropout=5)), "out_dropout=5 is out of range"),
        ("unknown hparam", damaged("unk", lambda c: c["hyper_parameters"]["net"].update(depth=3)), "unexpected keyword"),
        ("hparams missing", damaged("nohp", lambda c: c.pop("hyper_parameters")), "lacks its hyper_parameters"),
        ("weights missing", damaged("nosd", lambda c: c.pop("state_dict")), "lacks its hyper_parameters or state_dict"),
        ("hparams disagree with weights", damaged("shape", lambda c: c["hyper_parameters"]["net"].update(enc_hidden=16)), "the weights do not fit"),
        ("a weight removed", damaged("wmiss", lambda c: c["state_dict"].pop(first)), "the weights do not fit"),
        ("a weight reshaped", damaged("wshape", lambda c: c["state_dict"].update({first: torch.zeros(3)})), "the weights do not fit"),
        ("an extra weight", damaged("wextra", lambda c: c["state_dict"].update(extra=torch.zeros(1))), "the weights do not fit"),
    ]  # fmt: skip
    for name, path, expect in ckpt_cases:
        result = call(T, ["--ckpt", str(path), "bonjour"])
        judge(rows, "checkpoints: translate", f"translate --ckpt <{name}>", result, 2, expect)
    dev_base = torch.load(dev, map_location="cpu", weights_only=True)
    n_classes = len(dev_base["devise"]["class_ids"])

    def damaged_devise(name: str, change: Callable[[dict], None]) -> Path:
        return damaged(f"devise_{name}", change, dev_base)

    def nan_vector(c: dict) -> None:
        c["devise"]["class_vectors"][0, 0] = float("nan")

    # search checks the checkpoint's size and SHA-256 against the index's record before loading
    # it: any other file is refused so; a damaged DeViSE checkpoint meets the checks of index.
    replaced = "is not the one this index was built with"
    searched = [
        (name, path, "does not exist" if i < 2 else replaced)
        for i, (name, path, _) in enumerate(ckpt_cases[:6])
    ]
    searched.append(("a translation checkpoint", s2s, replaced))
    searched.append(("a damaged copy of the index's", damaged_devise("nan", nan_vector), replaced))
    for name, path, expect in [
        (
            "class vectors NaN",
            damaged_devise("nan", nan_vector),
            "its class vectors contain NaN or inf",
        ),
        (
            "a class name removed",
            damaged_devise("names", lambda c: c["devise"]["class_names"].pop()),
            f"{n_classes} class ids, {n_classes - 1} names",
        ),
        (
            "a seen flag removed",
            damaged_devise("seen", lambda c: c["devise"]["seen"].pop()),
            f"{n_classes - 1} seen flags",
        ),
        (
            "preprocessing without image_size",
            damaged_devise("size", lambda c: c["devise"]["transform"].pop("image_size")),
            "'image_size' is missing",
        ),
        (
            "preprocessing std 0",
            damaged_devise("std", lambda c: c["devise"]["transform"].update(std=[0.2, 0.0, 0.2])),
            "transform.std=0.0 is out of range",
        ),
        ("a translation checkpoint", s2s, "not a DeViSE checkpoint"),
    ]:
        argv = [
            "--ckpt",
            str(path),
            "--images",
            str(shapes),
            "--out",
            str(work / "idx_ckpt" / path.stem),
        ]
        judge(
            rows,
            "checkpoints: index",
            f"index --ckpt <{name}>",
            call(index_cli.main, argv),
            1,
            expect,
        )
    image = str(next(shapes.rglob("*.png")))
    for name, path, expect in searched:
        argv = ["--index", str(index_dir), "--image", image, "--ckpt", str(path)]
        result = call(search_cli.main, argv)
        judge(rows, "checkpoints: search", f"search --image x --ckpt <{name}>", result, 1, expect)
    if (work / "PWNED").exists():
        rows.append(
            Row("checkpoints", "pickle payload", "RAN", "the payload ran", False, "code ran")
        )

    # -- evaluate ----------------------------------------------------------------------------
    ev = work / "eval"
    ev.mkdir()
    (ev / "good.tsv").write_text("où est la maison ?\twhere is the house?\n")
    (ev / "empty.tsv").write_text("")
    (ev / "one.tsv").write_text("only one column\n")
    (ev / "latin1.tsv").write_bytes(b"caf\xe9 ?\tcoffee?\n")
    (ev / "crlf.tsv").write_bytes(b"o\xc3\xb9 est la maison ?\twhere is the house?\r\n")
    eval_cases = [
        ([f"--pairs={ev / 'missing.tsv'}"], 2, "does not exist"),
        ([f"--pairs={ev / 'empty.tsv'}"], 2, "no sentence pairs"),
        ([f"--pairs={ev / 'one.tsv'}"], 2, "tab-separated fields"),
        ([f"--pairs={ev / 'latin1.tsv'}"], 2, "invalid UTF-8"),
        ([f"--pairs={ev / 'crlf.tsv'}"], 0, None),
        ([f"--pairs={ev / 'good.tsv'}", "--columns", "fr"], 2, "exactly one 'fr' and one 'en'"),
        ([f"--pairs={ev / 'good.tsv'}", "--beam", "0"], 2, "--beam: 0 is out of range"),
        ([f"--pairs={ev / 'good.tsv'}", "--alpha", "nan"], 2, "--alpha: nan is out of range"),
        ([f"--pairs={ev / 'good.tsv'}", "--hypotheses", str(ev)], 2, "is a directory"),
        ([f"--pairs={ev / 'good.tsv'}", "--batch-size", "0"], 2, "--batch-size: 0 is out of range"),
    ]

    def one_pair_scored(out: str, _: str) -> str:
        """The CRLF file's one pair read and scored (the line ending is not part of the text)."""
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return "no JSON line"
        if (result.get("pairs"), result.get("sentences")) != (1, 1):
            return f"pairs {result.get('pairs')}, sentences {result.get('sentences')}"
        return "" if 0.0 <= result.get("bleu", -1.0) <= 100.0 else f"bleu {result.get('bleu')}"

    for flags, status, expect in eval_cases:
        result = call(evaluate_cli.main, ["--ckpt", str(s2s), *flags])
        check = one_pair_scored if "crlf.tsv" in flags[0] else None
        judge(rows, "files/numbers: evaluate", "evaluate " + " ".join(f.replace(str(ev) + "/", "") for f in flags), result, status, expect, check)  # fmt: skip

    # -- index: files and images --------------------------------------------------------------
    def folder(name: str) -> Path:
        path = work / "img" / name
        path.mkdir(parents=True)
        picture(path / "cls" / "ok.png")
        return path

    cases: list[tuple[str, Path | str, list[str], int, str | None]] = []
    empty = work / "img" / "empty"
    empty.mkdir(parents=True)
    cases.append(("an empty folder", empty, [], 1, "no images"))
    cases.append(("a missing folder", work / "img" / "missing", [], 1, "does not exist"))
    f = folder("fifo")
    os.mkfifo(f / "cls" / "pipe.jpg")
    cases.append(("a named pipe named .jpg", f, [], 0, "not regular files"))
    f = folder("loop")
    os.symlink(f / "cls" / "loop.jpg", f / "cls" / "loop.jpg")
    cases.append(("a symlink loop", f, [], 0, "not regular files"))
    f = folder("dangling")
    os.symlink(work / "nowhere.png", f / "cls" / "dangling.png")
    cases.append(("a dangling symlink", f, [], 0, "not regular files"))
    f = folder("socketless_dev")
    os.symlink("/dev/zero", f / "cls" / "zero.jpg")
    cases.append(("a symlink to /dev/zero", f, [], 0, "not regular files"))
    f = folder("thin")
    Image.new("L", (1, 3_000_000)).save(f / "cls" / "thin.png")
    cases.append(("1 x 3,000,000 PNG", f, [], 0, "1 of 2 images unreadable"))
    f = folder("bomb")
    Image.new("1", (12_000, 12_000)).save(f / "cls" / "bomb.png")
    cases.append(("144-megapixel 1-bit PNG (bomb)", f, [], 0, "1 of 2 images unreadable"))
    f = folder("sixteen")
    Image.fromarray(np.zeros((40, 40), np.uint16)).save(f / "cls" / "deep.png")
    cases.append(("16-bit grayscale PNG", f, [], 0, None))
    f = folder("truncated")
    data = (f / "cls" / "ok.png").read_bytes()
    (f / "cls" / "half.png").write_bytes(data[: len(data) // 2])
    (f / "cls" / "zero.png").write_bytes(b"")
    (f / "cls" / "html.jpg").write_text("<html>404</html>")
    cases.append(("truncated, empty and HTML images", f, [], 0, "3 of 4 images unreadable"))
    f = folder("modes")
    for mode in ("CMYK", "RGBA", "P", "I", "F", "LA"):
        Image.new(mode, (30, 30)).save(f / "cls" / f"{mode}.tiff")
    cases.append(("CMYK, RGBA, palette, 32-bit int and float TIFFs", f, [], 0, None))
    f = folder("names")
    picture(f / "cls" / "über näme with spaces.png")
    picture(f / "cls" / "-dash.png")
    cases.append(("odd file names", f, [], 0, None))
    cases.append(
        (
            "--out is an existing file",
            folder("outfile"),
            ["--out", str(work / "eval" / "good.tsv")],
            2,
            "exists and is not a folder",
        )
    )
    cases.append(
        (
            "--batch-size 0",
            folder("b0"),
            ["--batch-size", "0"],
            2,
            "--batch-size: 0 is out of range",
        )
    )
    cases.append(
        (
            "--query-words -1",
            folder("q"),
            ["--query-words", "-1"],
            2,
            "--query-words: -1 is out of range",
        )
    )
    cases.append(("--device tpu", folder("dev"), ["--device", "tpu"], 2, "is not a device"))
    cases.append(
        (
            "--vectors missing file",
            folder("vm"),
            ["--vectors", str(work / "no.vec")],
            1,
            "does not exist",
        )
    )
    (work / "bad.vec").write_text("2 3\nred 1 2\n")
    cases.append(
        (
            "--vectors malformed",
            folder("vb"),
            ["--vectors", str(work / "bad.vec")],
            1,
            "expected a word and",
        )
    )
    (work / "nan.vec").write_text(
        "2 50\nred " + " ".join(["nan"] * 50) + "\nblue " + " ".join(["0"] * 50) + "\n"
    )
    cases.append(
        (
            "--vectors of only NaN and zero rows",
            folder("vn"),
            ["--vectors", str(work / "nan.vec")],
            1,
            "none of the 22 nouns has a vector",
        )
    )
    (work / "nouns.tsv").write_bytes(b"\xff\xfe garbage")
    cases.append(
        (
            "--nouns not UTF-8",
            folder("nn"),
            ["--nouns", str(work / "nouns.tsv")],
            1,
            "no line is UTF-8 text",
        )
    )
    cases.append(
        (
            "--ckpt a translation checkpoint",
            folder("ck"),
            ["--ckpt", str(s2s)],
            1,
            "not a DeViSE checkpoint",
        )
    )
    # What each folder that indexes must keep: every readable image, and nothing else.
    kept = {"a named pipe named .jpg": 1, "a symlink loop": 1, "a dangling symlink": 1,
            "a symlink to /dev/zero": 1, "1 x 3,000,000 PNG": 1, "144-megapixel 1-bit PNG (bomb)": 1,
            "16-bit grayscale PNG": 2, "truncated, empty and HTML images": 1,
            "CMYK, RGBA, palette, 32-bit int and float TIFFs": 7, "odd file names": 3}  # fmt: skip

    def indexed(out: Path, n: int) -> Callable[[str, str], str]:
        def check(_: str, __: str) -> str:
            ids = json.loads((out / "images" / "index.json").read_text())["ids"]
            return "" if len(ids) == n else f"{len(ids)} images indexed, expected {n}"

        return check

    assert set(kept) == {name for name, _, _, status, _ in cases if status == 0}
    for name, images, extra, status, expect in cases:
        out = work / "idx" / name.replace(" ", "_").replace("/", "_")
        argv = ["--ckpt", str(dev), "--images", str(images), "--out", str(out), *extra]
        if "--ckpt" in extra:
            argv = argv[2:]
        if "--out" in extra:
            argv = argv[:4] + extra
        result = call(index_cli.main, argv)
        check = indexed(out, kept[name]) if status == 0 else None
        judge(rows, "files/images: index", f"index --images <{name}> {' '.join(extra) if extra and '--out' not in extra and '--ckpt' not in extra else ''}".strip(), result, status, expect, check)  # fmt: skip

    # -- search: tampered indices and flags ----------------------------------------------------
    def tampered(name: str, change: Callable[[Path], None]) -> Path:
        target = work / "tampered" / name
        shutil.copytree(index_dir, target)
        change(target)
        return target

    def edit(part: str, fn: Callable[[dict], None]) -> Callable[[Path], None]:
        def change(root: Path) -> None:
            path = root / part / "index.json"
            info = json.loads(path.read_text())
            fn(info)
            path.write_text(json.dumps(info))

        return change

    def write(part: str, data: bytes) -> Callable[[Path], None]:
        return lambda root: (root / part).write_bytes(data)

    def vectors(array: np.ndarray) -> Callable[[Path], None]:
        def change(root: Path) -> None:
            np.save(root / "images" / "vectors.npy", array, allow_pickle=True)
            edit(
                "images",
                lambda i: i["files"].update(
                    {"vectors.npy": file_digest(root / "images" / "vectors.npy")}
                ),
            )(root)

        return change

    good_vectors = np.load(index_dir / "images" / "vectors.npy")
    native = index_dir / "images" / "hnswlib.bin"
    search_cases = [
        ("ids climb out (../../etc/passwd)", edit("images", lambda i: i.update(ids=["../../../../etc/passwd"] * len(i["ids"]))), "leaves the indexed folder"),
        ("absolute ids", edit("images", lambda i: i.update(ids=["/etc/passwd"] * len(i["ids"]))), "leaves the indexed folder"),
        ("ids missing", edit("images", lambda i: i.pop("ids")), "'ids' is missing"),
        ("ids a string", edit("images", lambda i: i.update(ids="x")), "'ids' should be list"),
        ("ids numbers", edit("images", lambda i: i.update(ids=list(range(len(i["ids"]))))), "list of strings"),
        ("fewer ids than vectors", edit("images", lambda i: i.update(ids=i["ids"][:-1])), "expected float vectors of shape"),
        ("dim 0", edit("images", lambda i: i.update(dim=0)), "dim=0 is out of range"),
        ("dim other", edit("images", lambda i: i.update(dim=7)), "expected float vectors of shape"),
        ("backend unknown", edit("images", lambda i: i.update(backend="annoy")), "backend='annoy' unknown"),
        ("backend switched to faiss", edit("images", lambda i: i.update(backend="faiss")), "no size and checksum recorded for faiss.index"),
        ("params m negative", edit("images", lambda i: i["params"].update(m=-1)), "params.m=-1 is out of range"),
        ("params ef huge", edit("images", lambda i: i["params"].update(ef_search=10**12)), "params.ef_search=1000000000000 is out of range: expected an integer in [1, "),
        ("params extra key", edit("images", lambda i: i["params"].update(x=1)), "params should be"),
        ("format 1", edit("images", lambda i: i.update(format=1)), "index format 1"),
        ("format a string", edit("images", lambda i: i.update(format="2")), "'format' should be int"),
        ("checksums removed", edit("images", lambda i: i.pop("files")), "'files' is missing"),
        ("checksum altered", edit("images", lambda i: i["files"]["hnswlib.bin"].update(sha256="0" * 64)), "does not match the checksum"),
        ("names fewer than ids", edit("images", lambda i: i["metadata"].update(names=["x"])), ": 1 names for "),
        ("index.json empty", write("images/index.json", b""), "cannot be read as JSON"),
        ("index.json a list", write("images/index.json", b"[1]"), "not an object"),
        ("index.json not UTF-8", write("images/index.json", b"\xff\xfe{}"), "cannot be read as JSON"),
        ("index.json 'null'", write("images/index.json", b"null"), "not an object"),
        ("crafted hnswlib header", write("images/hnswlib.bin", b"\xff" * 64 + native.read_bytes()[64:]), "does not match the checksum"),
        ("hnswlib file truncated", write("images/hnswlib.bin", native.read_bytes()[:100]), "does not match the checksum"),
        ("hnswlib file removed", lambda r: (r / "images" / "hnswlib.bin").unlink(), "missing or not a regular file"),
        ("hnswlib file is a FIFO", lambda r: ((r / "images" / "hnswlib.bin").unlink(), os.mkfifo(r / "images" / "hnswlib.bin")), "missing or not a regular file"),
        ("vectors pickled objects", vectors(np.array([{"a": 1}], dtype=object)), "cannot be read as a NumPy array"),
        ("vectors NaN", vectors(np.full_like(good_vectors, np.nan)), "NaN or inf"),
        ("vectors wrong shape", vectors(good_vectors[:, :3].copy()), "expected float vectors of shape"),
        ("vectors integers", vectors(good_vectors.astype(np.int32)), "expected float vectors"),
        ("top-level index.json missing ckpt", edit(".", lambda i: i.pop("ckpt")), "'ckpt' is missing"),
        ("top-level index.json a list", write("index.json", b"[]"), "not an object"),
        ("no index.json at all", lambda r: (r / "index.json").unlink(), "no index.json"),
    ]  # fmt: skip
    for name, change, expect in search_cases:
        root = tampered(name.replace(" ", "_").replace("/", "_").replace("'", ""), change)
        result = call(search_cli.main, ["--index", str(root), "--text", "red", "--k", "3"])
        judge(rows, "indices: search", f"search --index <{name}>", result, 1, expect, lambda o, e: "results printed" if o.strip() else "")  # fmt: skip
    query = next(shapes.rglob("*.png"))
    flag_cases_s = [
        (["--text", "red", "--k", "0"], 2, "--k: 0 is out of range"),
        (["--text", "red", "--k", "nan"], 2, "'nan' is not an integer"),
        (["--text", "red", "--k", "10000000"], 2, "--k: 10000000 is out of range"),
        (["--text", "red", "--out", str(work)], 2, "is a directory"),
        (["--text", "red", "--out", str(work / "grid")], 2, "expected a file name ending in"),
        (
            ["--text", "red", "--out", str(work / "eval" / "good.tsv" / "g.png")],
            2,
            "is not a directory",
        ),
        (["--text", "red", "--target", "nouns"], 2, "invalid choice"),
        (["--text", ""], 1, "empty text query"),
        (["--text", "?!."], 1, "no word vector for ['?!.'] among the index's query words"),
        (["--text", "zeppelin"], 1, "no word vector for ['zeppelin']"),
        (["--text", "red", "--image", str(query)], 2, "not allowed with argument"),
        (["--image", str(work / "none.png")], 1, "does not exist"),
        (["--image", str(work / "eval" / "good.tsv")], 1, "unreadable"),
        (["--image", str(work / "img" / "bomb" / "cls" / "bomb.png")], 1, "over the pixel budget"),
        (["--text", "red", "--images-root", str(work / "nowhere")], 1, "is not a folder"),
        (["--text", "red", "--vectors", str(work / "no.vec")], 1, "does not exist"),
    ]
    for flags, status, expect in flag_cases_s:
        result = call(search_cli.main, ["--index", str(index_dir), *flags])
        judge(rows, "numbers/files: search", "search " + " ".join(f.replace(str(work) + "/", "") for f in flags), result, status, expect)  # fmt: skip

    # -- download --------------------------------------------------------------------------
    dl = work / "dl"
    dl.mkdir()
    (dl / "page.zip").write_text("<!DOCTYPE html><html>log in</html>")
    (dl / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    (dl / "empty.zip").write_bytes(b"")
    import zipfile

    with zipfile.ZipFile(dl / "other.zip", "w") as z:
        z.writestr("deu.txt", "a\tb\n")
    with zipfile.ZipFile(dl / "latin.zip", "w") as z:
        z.writestr("fra.txt", b"Who?\tQui \xe9?\n")
    dl_cases = [
        (["tatoeba", "--archive", str(dl / "page.zip")], "is an HTML page"),
        (["tatoeba", "--archive", str(dl / "broken.zip")], "not a zip archive"),
        (["tatoeba", "--archive", str(dl / "empty.zip")], "not a zip archive"),
        (["tatoeba", "--archive", str(dl / "other.zip")], "has no fra.txt"),
        (["tatoeba", "--archive", str(dl / "latin.zip")], "not UTF-8"),
        (["tatoeba", "--archive", str(dl / "missing.zip")], "does not exist"),
    ]
    for flags, expect in dl_cases:
        result = call(download_cli.main, [*flags, "--dest", str(dl / "out")])
        judge(rows, "downloads", "download " + " ".join(f.replace(str(dl) + "/", "") for f in flags), result, 1, expect)  # fmt: skip
    import urllib.request

    class Served(io.BytesIO):
        def __init__(self, payload: bytes, length: int | None = None) -> None:
            super().__init__(payload)
            self.headers = {"Content-Length": str(len(payload) if length is None else length)}

        def __enter__(self) -> Served:
            return self

        def __exit__(self, *a: object) -> None:
            self.close()

    real = urllib.request.urlopen
    for name, payload, length, expect in [
        ("a login page instead of the tar", b"<html>login</html>", None, "sent a web page"),
        ("a cut connection", b"x" * 100, 5000, "got 100 of 5,000 bytes"),
        ("not a tar", b"garbage " * 200, None, "not a tar archive"),
    ]:
        urllib.request.urlopen = lambda *a, p=payload, n=length, **k: Served(p, n)  # type: ignore[assignment]
        result = call(download_cli.main, ["giga-fren", "--dest", str(dl / "g")])
        left = list((dl / "g").iterdir()) if (dl / "g").exists() else []
        judge(rows, "downloads", f"download giga-fren <{name}>", result, 1, expect,
              lambda o, e, left=left: f"left {left}" if left else "")  # fmt: skip
    urllib.request.urlopen = real  # type: ignore[assignment]

    # -- lit-plot-schedules (the callbacks' own CLI) --------------------------------------------
    from callbacks import plot as plot_cli

    for flags, expect in [
        (["--total-steps", "0"], "expected an integer in [1, 10000000]"),
        (["--total-steps", "-5"], "expected an integer in [1, 10000000]"),
        (["--max-lr", "nan"], "expected a finite number > 0"),
        (["--max-lr", "inf"], "expected a finite number > 0"),
        (["--out", str(work)], "expected a file name ending in"),
    ]:
        result = call(plot_cli.main, flags)
        judge(rows, "numbers/files: lit-plot-schedules", "lit-plot-schedules " + " ".join(f.replace(str(work) + "/", "") for f in flags), result, 2, expect)  # fmt: skip

    # -- train.py: numbers, data, resume (real processes) ---------------------------------------
    single = work / "single"
    picture(single / "red" / "a.png")
    (work / "single.vec").write_text("1 3\nred 1 0 0.5\n")
    one_image = ["model=devise", "data.synthetic=null", f"data.images={single}",
                 f"data.vectors={work / 'single.vec'}", "data.class_names=null", "data.nouns=null",
                 "data.holdout_classes=[]"]  # fmt: skip
    train_cases = [
        (["data.batch_size=0"], "data.batch_size=0 is out of range"),
        (["data.max_vocab=0"], "data.max_vocab=0 is out of range"),
        (["data.n_process=0"], "data.n_process=0 is out of range"),
        (["data.min_freq=-1"], "data.min_freq=-1 is out of range"),
        (["data.valid_fraction=0"], "data.valid_fraction=0 is out of range"),
        (["data.tgt_len_percentile=101"], "data.tgt_len_percentile=101 is out of range"),
        (["data.src_vectors.epochs=0"], "data.src_vectors.epochs=0 is out of range"),
        (["data.src_vectors.scale=-1"], "data.src_vectors.scale=-1 is out of range"),
        (["model.net.enc_hidden=-4"], "model.net.enc_hidden=-4 is out of range"),
        (["model.net.dec_layers=0"], "model.net.dec_layers=0 is out of range"),
        (["model.net.attn_size=100000000"], "model.net.attn_size=100000000 is out of range"),
        (["model.net.enc_dropout=nan"], "model.net.enc_dropout=nan is out of range"),
        (["model.optimizer.lr=0"], "model.optimizer.lr=0 is out of range"),
        (["model.optimizer.lr=nan"], "model.optimizer.lr=nan is out of range"),
        (["+model.optimizer.eps=-1"], "model.optimizer.eps=-1 is out of range"),
        (["model.optimizer.eps=1"], "Could not override 'model.optimizer.eps'"),
        (["model.label_smoothing=-0.1"], "model.label_smoothing=-0.1 is out of range"),
        (["trainer.max_epochs=-2"], "trainer.max_epochs=-2 is out of range"),
        (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0 is out of range"),
        (["+trainer.val_check_interval=0"], "trainer.val_check_interval=0 is out of range"),
        (["trainer.gpus=0"], "trainer.gpus=0: expected an int >= 1, or null for CPU/auto"),
        (["trainer.gpus=4"], "CUDA sees"),
        (["seed=-1"], "seed=-1 is out of range"),
        (["seed=99999999999"], "seed=99999999999 is out of range"),
        (["model=devise", "data.image_size=0"], "data.image_size=0 is out of range"),
        (["model=devise", "data.image_size=100000"], "data.image_size=100000 is out of range"),
        (["model=devise", "data.batch_size=-1"], "data.batch_size=-1 is out of range"),
        (["model=devise", "data.num_workers=-1"], "data.num_workers=-1 is out of range"),
        (["model=devise", "data.valid_fraction=1"], "data.valid_fraction=1 is out of range"),
        (["model=devise", "data.holdout_classes=999"], "holdout_classes=999: 20 classes available"),
        (["model=devise", "model.net.dropout_in=1"], "model.net.dropout_in=1 is out of range"),
        (
            ["data.min_freq=1000000", "data.train.n_pairs=300"],
            "leaves the French vocabulary with only the 4 specials",
        ),
        (["data.train.n_pairs=0"], "data.train.n_pairs=0 is out of range"),
        (["ckpt_path=last", "task_name=nothing_here"], "ckpt_path=last: no last.ckpt"),
        ([f"ckpt_path={dev}", *TINY_SEQ2SEQ], "not a translation checkpoint"),
        ([f"ckpt_path={ckpts / 'pickle.ckpt'}"], "not a readable checkpoint"),
        (["data=giga_fren"], "does not exist"),
        (one_image, "1 training image(s) left"),
        (
            ["model=devise", "data.synthetic=null"],
            "data.images: ConfigTypeError raised while resolving",
        ),
        (
            ["model=devise", "data.synthetic.n_per_class=1"],
            "data.synthetic.n_per_class=1 is out of range",
        ),
        (
            ["callbacks.one_cycle.div_factor=inf"],
            "OneCycleScheduler(div_factor=inf): expected a finite number > 0 or a list of them",
        ),
        (
            ["callbacks.teacher_forcing.epochs=0"],
            "TeacherForcingScheduler(epochs=0): expected an int >= 1",
        ),
    ]
    tdir = work / "train"
    tdir.mkdir()
    for overrides, expect in train_cases:
        cmd = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={tdir / 'run'}",
               f"paths.data_dir={tdir / 'data'}", "logger=csv", "trainer.max_epochs=1", *overrides]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tdir, timeout=300)
            result = (proc.returncode, proc.stdout, proc.stderr, "")
        except subprocess.TimeoutExpired:
            result = ("HANG", "", "", "")
        judge(rows, "numbers/data/resume: train.py", "python train.py " + " ".join(o.replace(str(work) + "/", "") for o in overrides), result, 1, expect)  # fmt: skip

    failures = [r for r in rows if not r.ok]
    table = ["| # | class | command | exit | printed | verdict |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        said = r.said.replace("|", "\\|").replace(str(work) + "/", "")
        command = r.command.replace("|", "\\|")
        table.append(
            f"| {i} | {r.cls} | `{command}` | {r.status} | {said} | {'ok' if r.ok else 'FAIL: ' + r.why} |"
        )
    text = "\n".join(table)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    else:
        print(text)
    for r in failures:
        print(f"FAIL {r.command}: {r.why}", file=sys.stderr)
    summary = {
        "inputs": len(rows),
        "failures": len(failures),
        "tracebacks": sum(r.why.startswith("traceback") for r in rows),
        "hangs": sum(r.status == "HANG" for r in rows),
        "by_class": dict(Counter(r.cls for r in rows)),
        "seconds": round(time.time() - start),
    }
    print(json.dumps(summary))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
