"""Bad input through the public entry points: each gets one clear answer, nothing silently lost.

``python train.py`` runs ``train.train`` inside ``lit_common.one_line.one_line_errors``: bad input
ends in one ``error: ...`` line (SystemExit) instead of a traceback; drops and skips are counted
in the data reports.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytest
import torch

import train
from lit_common import run
from tests.conftest import DEVISE_RUN, TINY_RUN, compose_train
from tests.helpers import write_unreadable, write_vec

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

SEQ2SEQ = [o for o in TINY_RUN if not o.startswith("trainer.max_epochs")] + [
    "trainer.max_epochs=1",
    "data.src_vectors.kind=none",
    "data.tgt_vectors.kind=none",
]
QUESTIONS = "".join(f"Où est le chat {i} ?\tWhere is cat {i}?\n" for i in range(60))


def error_of(tmp_path: Path, *overrides: str) -> str:
    """The one line `python train.py <overrides>` ends with."""
    cfg = compose_train(tmp_path / "run", *overrides, f"paths.data_dir={tmp_path / 'data'}")
    with pytest.raises(SystemExit) as exit_info, run.one_line_errors():
        train.train(cfg)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def tsv_overrides(path: Path) -> list[str]:
    base = [o for o in SEQ2SEQ if not o.startswith("data.train.n_pairs")]
    return [*base, "data=tatoeba_questions", f"data.train.path={path}", "data.valid=null",
            "data.test=null"]  # fmt: skip


def prepared(tmp_path: Path, *overrides: str) -> Any:
    cfg = compose_train(tmp_path / "run", *overrides, f"paths.data_dir={tmp_path / 'data'}")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


# -- corpus --
def test_corpus_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    long_pair = "Où " + "très " * 80 + "?\tWhere " + "very " * 80 + "?\n"
    path.write_bytes(QUESTIONS.encode() + b"\n" + b"Caf\xe9 ?\tCoffee?\n" + long_pair.encode())
    cut = ("data.src_len_percentile=97", "data.tgt_len_percentile=99")  # the lesson's limits
    report = prepared(tmp_path, *tsv_overrides(path), *cut).report
    read = report["splits"]["train"]["read"]
    assert read["skipped"] == {"empty line": 1, "invalid UTF-8": 1}
    assert report["splits"]["train"]["truncated_pairs"] >= 1  # the 80-word pair is cut, not lost


def test_corpus_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "three.tsv").write_text("a\tb\tc\n" * 5)
    (tmp_path / "nothing.tsv").write_text("\n\n")
    fr, en = tmp_path / "giga.fr", tmp_path / "giga.en"
    fr.write_text("Qui ?\nQuoi ?\n")
    en.write_text("Who?\n")
    cases = {
        "expects 2": tsv_overrides(tmp_path / "three.tsv"),  # an unknown column layout
        "empty after reading and filtering": tsv_overrides(tmp_path / "nothing.tsv"),
        "does not exist": tsv_overrides(tmp_path / "missing.tsv"),
        "name exactly one 'fr'": [
            *tsv_overrides(tmp_path / "three.tsv"),
            "data.train.columns=[fr,fr]",
        ],
        "giga.en": [
            *[o for o in SEQ2SEQ if not o.startswith("data.train.n_pairs")],
            "data=giga_fren",
            f"data.train.fr_path={fr}",
            f"data.train.en_path={en}",
        ],
    }
    for expected, overrides in cases.items():
        assert expected in error_of(tmp_path, *overrides), expected


# -- word vectors --
def test_word_vector_errors_are_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text(QUESTIONS)
    malformed = tmp_path / "malformed.vec"
    malformed.write_text("2 64\nwhere " + " ".join(["0.5"] * 64) + "\nis 1 2\n")
    wrong_dim = write_vec(tmp_path / "dim.vec", {"where": [1.0, 2.0]})
    unrelated = write_vec(tmp_path / "other.vec", {"zeppelin": [1.0] * 64})
    base = [*tsv_overrides(corpus), "data.tgt_vectors.kind=vec"]
    cases = {
        "does not exist": f"data.tgt_vectors.path={tmp_path / 'missing.vec'}",
        "malformed.vec:3: expected a word and 64 numbers": f"data.tgt_vectors.path={malformed}",
        "dimension 2 but the embedding has 64": f"data.tgt_vectors.path={wrong_dim}",
        "none of the": f"data.tgt_vectors.path={unrelated}",
    }
    for expected, override in cases.items():
        assert expected in error_of(tmp_path, *base, override), expected


# -- images --
def shapes_overrides(root: Path) -> list[str]:
    files = [f"data.images={root}/images", f"data.class_names={root}/classes.tsv",
             f"data.vectors={root}/vectors.vec", f"data.nouns={root}/nouns.tsv"]  # fmt: skip
    return [*DEVISE_RUN, "trainer.max_epochs=1", "data.synthetic=null", *files]


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    from lit_devise.synthetic import make_shapes

    return make_shapes(tmp_path / "shapes", n_per_class=6, size=32)


def test_image_problems_are_skipped_and_reported(tmp_path: Path, shapes: Path) -> None:
    from PIL import Image

    folder = shapes / "images" / "red_circle"
    write_unreadable(folder)
    Image.new("L", (32, 32), 90).save(folder / "gray.png")
    Image.new("RGB", (32, 32), (200, 0, 0)).convert("CMYK").save(folder / "cmyk.jpg")
    Image.new("RGBA", (32, 32), (200, 0, 0, 128)).save(folder / "rgba.png")
    Image.fromarray(np.full((32, 32), 50000, dtype=np.uint16)).save(folder / "deep.png")
    (shapes / "images" / "empty_class").mkdir()
    lines = (shapes / "classes.tsv").read_text() + "empty_class\tnothing\n"
    (shapes / "classes.tsv").write_text(
        lines.replace("green_cross\tgreen cross", "green_cross\tzeppelin")
    )
    dm = prepared(tmp_path, *shapes_overrides(shapes))
    assert dm.report["unreadable_images"] == 3  # truncated, 0-byte, text: skipped and counted
    assert dm.report["empty_class_folders"] == ["empty_class"]
    assert dm.report["classes_without_vector"] == ["green_cross"]
    assert dm.report["images_of_dropped_classes"] == 6
    readable = {"gray.png", "cmyk.jpg", "rgba.png", "deep.png", "good.jpg"}
    kept = {Path(p).name for s in ("train", "valid", "zeroshot") for p in dm.split_paths(s)}
    assert readable <= kept  # every mode became RGB, nothing dropped


def test_image_errors_are_one_line(tmp_path: Path, shapes: Path) -> None:
    (tmp_path / "classes.tsv").write_text("red_circle\tzeppelin\n")
    overrides = shapes_overrides(shapes)
    assert "not in the class mapping file" in error_of(
        tmp_path, *overrides, f"data.class_names={tmp_path / 'classes.tsv'}"
    )
    assert "does not exist" in error_of(tmp_path, *overrides, f"data.images={tmp_path / 'no'}")
    assert "weights_path" in error_of(
        tmp_path, *overrides, f"model.net.weights_path={tmp_path / 'no.th'}"
    )


# -- configs and checkpoints --
def test_unknown_data_name_lists_the_choices(tmp_path: Path) -> None:
    from tests.helpers import run_train

    proc = run_train("data=tatoba", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Could not find 'data/tatoba'" in proc.stderr and "tatoeba_questions" in proc.stderr


def test_checkpoint_errors_are_one_line(tmp_path: Path, tiny_run: dict[str, Any]) -> None:
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_run["ckpt"].read_bytes()[:5000])
    assert "not a readable checkpoint" in error_of(tmp_path, *SEQ2SEQ, f"ckpt_path={truncated}")
    other = error_of(tmp_path, *DEVISE_RUN, f"ckpt_path={tiny_run['ckpt']}")
    assert "not a DeViSE checkpoint" in other


def test_crafted_pickles_are_refused_not_run(tmp_path: Path, tiny_run: dict[str, Any]) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    # A checkpoint whose unpickling would run code.
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, evil)
    assert "not a readable checkpoint" in error_of(tmp_path, *SEQ2SEQ, f"ckpt_path={evil}")
    # A data cache file replaced by a pickle.
    cache = next((tiny_run["dir"] / "data" / "cache").rglob("vectors-*"))
    copy = tmp_path / "data" / "cache"
    shutil.copytree(cache.parent.parent, copy)
    target = next(copy.rglob("vectors-*")) / "src.npy"
    np.save(target, np.array([Payload()], dtype=object), allow_pickle=True)
    cfg_data = [*TINY_RUN, f"paths.data_dir={tmp_path / 'data'}"]
    assert "not a plain array" in error_of(tmp_path, *cfg_data)
    assert not marker.exists()
    # The payload is live: an unsafe load runs it, so only the refusals above kept it from running.
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_nan_loss_stops_naming_the_step_and_keeps_good_checkpoints(tmp_path: Path) -> None:
    poison = "+callbacks.poison={_target_:tests.toy.PoisonBatch,step:16}"
    message = error_of(tmp_path, *DEVISE_RUN, poison)
    assert "training loss is nan at optimizer step 16" in message
    checkpoints = tmp_path / "run" / "checkpoints"
    assert not (checkpoints / "on_exception.ckpt").exists()
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 14  # the end of epoch 1 (7 batches an epoch), before the NaN
    floats = [v for v in last["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in floats)


def _tampered(tmp_path: Path, source: Path, change: Any, name: str) -> Path:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    change(checkpoint)
    path = tmp_path / f"{name}.ckpt"
    torch.save(checkpoint, path)
    return path


def _first_weight(checkpoint: dict[str, Any]) -> str:
    return next(iter(checkpoint["state_dict"]))


DAMAGED_SEQ2SEQ = [
    (
        "no specials",
        lambda c: c["translation"].update(src_vocab=["a", "b"]),
        "Vocab must start with",
    ),
    (
        "vocab not strings",
        lambda c: c["translation"].update(tgt_vocab=[1, 2]),
        "expected a list of strings",
    ),
    (
        "vocab duplicates",
        lambda c: c["translation"]["src_vocab"].append("_unk_"),
        "duplicate tokens",
    ),
    ("info missing key", lambda c: c["translation"].pop("tgt_vocab"), "lacks ['tgt_vocab']"),
    (
        "unknown language",
        lambda c: c["translation"].update(src_lang="zz"),
        "src_lang 'zz' is not a spaCy language",
    ),
    ("info not a dict", lambda c: c.update(translation=[1]), "entry is not a dict"),
    (
        "lowercase not bool",
        lambda c: c["translation"].update(lowercase="yes"),
        "'lowercase' should be bool",
    ),
    (
        "hparam out of range",
        lambda c: c["hyper_parameters"]["net"].update(enc_hidden=0),
        "enc_hidden=0 is out of range",
    ),
    (
        "unknown hparam",
        lambda c: c["hyper_parameters"]["net"].update(depth=3),
        "unexpected keyword argument 'depth'",
    ),
    ("no hparams", lambda c: c.pop("hyper_parameters"), "lacks its hyper_parameters or state_dict"),
    ("no state_dict", lambda c: c.pop("state_dict"), "lacks its hyper_parameters or state_dict"),
    (
        "hparams disagree with weights",
        lambda c: c["hyper_parameters"]["net"].update(enc_hidden=32),
        "the weights do not fit",
    ),
    ("a weight missing", lambda c: c["state_dict"].pop(_first_weight(c)), "the weights do not fit"),
    (
        "a weight reshaped",
        lambda c: c["state_dict"].update({_first_weight(c): torch.zeros(3)}),
        "the weights do not fit",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "message"), DAMAGED_SEQ2SEQ, ids=[d[0] for d in DAMAGED_SEQ2SEQ]
)
def test_a_damaged_translation_checkpoint_is_one_line(
    tmp_path: Path, tiny_run: dict[str, Any], capsys: Any, name: str, change: Any, message: str
) -> None:
    """Checkpoints that load safely but disagree with themselves: translate says so in one line
    (exit 2) instead of a traceback from deep inside PyTorch."""
    from lit_seq2seq.translate import main

    damaged = _tampered(tmp_path, tiny_run["ckpt"], change, name.replace(" ", "_"))
    assert main(["--ckpt", str(damaged), "bonjour"]) == 2
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert out.out == "" and len(err) == 1 and err[0].startswith("error: "), out.err
    assert message in err[0], err[0]
