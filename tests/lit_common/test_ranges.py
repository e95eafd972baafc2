"""Every number of a config or flag is checked against its range at start-up, in one line that
names the key, the value and the range."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from lit_common import run
from lit_common.ranges import Int, RangeError, Real, check_config, check_ranges
from tests.conftest import compose_train


@given(
    low=st.integers(-1000, 1000),
    span=st.integers(0, 1000),
    value=st.one_of(st.integers(-3000, 3000), st.floats(allow_nan=True, allow_infinity=True)),
    low_open=st.booleans(),
    high_open=st.booleans(),
)
def test_contains_agrees_with_the_bounds(
    low: int, span: int, value: float, low_open: bool, high_open: bool
) -> None:
    valid = Real(low, low + span, low_open=low_open, high_open=high_open)
    expected = (
        math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < low + span if high_open else value <= low + span)
    )
    assert valid.contains(value) == expected
    if not expected:
        with pytest.raises(RangeError, match=r"^k=.* is out of range: expected a finite number"):
            valid.check("k", value)


@given(value=st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_non_numbers_are_refused_unless_listed(value: object) -> None:
    assert not Int(0).contains(value)
    assert Real(0.0, also=("auto",)).contains("auto")


def test_integers_refuse_floats_and_huge_integers_do_not_overflow() -> None:
    assert not Int(1).contains(2.0)
    assert Int(1).contains(10**400) and not Int(1, 10).contains(10**400)
    assert Int(1, null=True).contains(None) and not Int(1).contains(None)
    assert str(Int(5, 100)) == "an integer in [5, 100]"
    assert str(Real(0, 1, low_open=True, null=True)) == "a finite number in (0, 1], or null"


def test_nested_list_and_prefixed_keys() -> None:
    ranges = {"net.hidden": Int(1), "betas[]": Real(0, 1, high_open=True)}
    check_ranges({"net": {"hidden": 3}, "betas": [0.9, 0.99]}, ranges)
    with pytest.raises(RangeError, match=r"^model\.betas\[1\]=1\.5 is out of range"):
        check_ranges({"betas": [0.9, 1.5]}, ranges, "model.")
    with pytest.raises(RangeError, match=r"^net\.hidden=0 "):
        check_ranges({"net": {"hidden": 0}}, ranges)


def test_flag_types_name_the_range() -> None:
    parse = Int(1, 256).arg()
    assert parse("4") == 4
    for bad in ("0", "100000", "x", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"integer in \[1, 256\]"):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
        Real(0.0, 10.0).arg()("nan")


BAD_SETTINGS = [
    ("data.batch_size=0", "data.batch_size=0 is out of range: expected an integer in [1, 65536]"),
    ("data.max_vocab=0", "data.max_vocab=0 is out of range: expected an integer in [5, "),
    ("data.n_process=0", "data.n_process=0 is out of range"),
    ("data.min_freq=0", "data.min_freq=0 is out of range: expected an integer >= 1"),
    ("data.valid_fraction=1.0", "data.valid_fraction=1.0 is out of range"),
    ("data.src_len_percentile=0", "data.src_len_percentile=0 is out of range"),
    ("data.chunk_batches=-1", "data.chunk_batches=-1 is out of range"),
    ("data.num_workers=-2", "data.num_workers=-2 is out of range"),
    ("data.train.n_pairs=0", "data.train.n_pairs=0 is out of range"),
    ("data.src_vectors.epochs=0", "data.src_vectors.epochs=0 is out of range"),
    ("data.tgt_vectors.scale=-3", "data.tgt_vectors.scale=-3 is out of range"),
    ("data.tgt_vectors.scale=nan", "data.tgt_vectors.scale=nan is out of range"),
    ("model.net.enc_hidden=0", "model.net.enc_hidden=0 is out of range"),
    ("model.net.enc_dropout=1.0", "model.net.enc_dropout=1.0 is out of range"),
    ("model.net.out_dropout=-0.1", "model.net.out_dropout=-0.1 is out of range"),
    ("model.net.emb_init_std=0", "model.net.emb_init_std=0 is out of range"),
    ("model.label_smoothing=1.5", "model.label_smoothing=1.5 is out of range"),
    ("model.gradient_clip_norm=-1", "model.gradient_clip_norm=-1 is out of range"),
    ("model.optimizer.lr=-1", "model.optimizer.lr=-1 is out of range"),
    ("model.optimizer.lr=inf", "model.optimizer.lr=inf is out of range"),
    ("model.optimizer.betas=[0.9,1.5]", "model.optimizer.betas[1]=1.5 is out of range"),
    ("model.optimizer.weight_decay=-1", "model.optimizer.weight_decay=-1 is out of range"),
    ("trainer.max_epochs=-5", "trainer.max_epochs=-5 is out of range"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0 is out of range"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1 is out of range"),
    ("seed=-3", "seed=-3 is out of range"),
    ("data.batch_size=abc", "data.batch_size='abc' is out of range"),
    ("model=devise data.image_size=0", "data.image_size=0 is out of range"),
    ("model=devise data.batch_size=0", "data.batch_size=0 is out of range"),
    ("model=devise data.resize_ratio=2", "data.resize_ratio=2 is out of range"),
    ("model=devise data.holdout_classes=-1", "holdout_classes=-1 is out of range"),
    ("model=devise 'data.std=[0.2,0,0.2]'", "data.std[1]=0 is out of range"),
    ("model=devise data.synthetic.n_per_class=1", "data.synthetic.n_per_class=1 is out of range"),
    ("model=devise model.net.hidden=0", "model.net.hidden=0 is out of range"),
    ("model=devise 'model.hit_ks=[0,5]'", "model.hit_ks[0]=0 is out of range"),
    ("model=devise model.backbone_lr=-1", "model.backbone_lr=-1 is out of range"),
    # Lightning's Trainer and checkpoint callbacks, torch's LR schedulers, any _target_
    ("trainer.devices=0", "trainer.devices=0 is out of range: expected an integer >= 1, -1 (all)"),
    ("trainer.devices=[0,0]", "trainer.devices=[0, 0] is out of range"),
    ("+trainer.limit_predict_batches=-1", "trainer.limit_predict_batches=-1 is out of range"),
    (
        "callbacks.model_checkpoint.every_n_train_steps=-1",
        "callbacks.model_checkpoint.every_n_train_steps=-1 is out of range: expected an integer",
    ),
    (
        "callbacks.best_checkpoint.save_top_k=-2",
        "callbacks.best_checkpoint.save_top_k=-2 is out of range: expected an integer >= -1",
    ),
    (
        "+callbacks.early_stopping={_target_:pytorch_lightning.callbacks.EarlyStopping,"
        "monitor:val/bleu,patience:-1}",
        "callbacks.early_stopping.patience=-1 is out of range",
    ),
    (
        "model.scheduler={_target_:torch.optim.lr_scheduler.ReduceLROnPlateau,_partial_:true,"
        "factor:2.0}",
        "model.scheduler.factor=2.0 is out of range: expected a finite number in (0, 1)",
    ),
    (
        "model.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:0}",
        "model.scheduler.step_size=0 is out of range",
    ),
    (
        "model.scheduler={_target_:torch.optim.lr_scheduler.ReduceLROnPlatau,_partial_:true}",
        "model.scheduler._target_='torch.optim.lr_scheduler.ReduceLROnPlatau' cannot be "
        "imported (torch.optim.lr_scheduler has no 'ReduceLROnPlatau')",
    ),
    (
        "model.optimizer._target_=torch.optimm.Adam",
        "model.optimizer._target_='torch.optimm.Adam' cannot be imported (torch has no 'optimm')",
    ),
    (
        "callbacks.one_cycle._target_=callbacks.OneCycle",
        "callbacks.one_cycle._target_='callbacks.OneCycle' cannot be imported "
        "(callbacks has no 'OneCycle')",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_SETTINGS)
def test_a_bad_number_is_named_before_anything_is_built(
    tmp_path: Path, overrides: str, message: str
) -> None:
    cfg = compose_train(tmp_path, *[o.strip("'") for o in overrides.split(" ")])
    with pytest.raises(SystemExit) as exc, run.one_line_errors():
        if overrides.startswith("model=devise data.holdout"):
            import hydra

            hydra.utils.instantiate(cfg.data)  # a list or a number: checked by the datamodule
        else:
            run.check_numbers(cfg)
    text = str(exc.value)
    assert text.startswith("error: ") and message in text and "\n" not in text, text


# Settings only their constructors judge (a callback's own arguments, Lightning's exclusions and
# choices): the callbacks and the trainer are built before the datamodule, so they fail first.
REFUSED_BY_CONSTRUCTORS = [
    ("callbacks.one_cycle.pct_start=2", "OneCycleScheduler(pct_start=2): expected a number in"),
    ("callbacks.teacher_forcing.epochs=0", "TeacherForcingScheduler(epochs=0): expected an int"),
    ("callbacks.teacher_forcing.shape=zigzag", "TeacherForcingScheduler(shape='zigzag') unknown"),
    (
        "callbacks.model_checkpoint.every_n_train_steps=2"
        " +callbacks.model_checkpoint.every_n_epochs=2",
        "callbacks: Combination of parameters every_n_train_steps=2, every_n_epochs=2",
    ),
    ("trainer.precision=17", "trainer: Precision 17 is invalid"),
    ("trainer.accelerator=tpux", "trainer: You selected an invalid accelerator name"),
    ("trainer.devices=[0,1]", "trainer: `devices` selected with `CPUAccelerator` should be an int"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED_BY_CONSTRUCTORS)
def test_callbacks_and_trainer_refuse_before_the_data_is_built(
    tmp_path: Path, overrides: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import train

    built: list[str] = []
    monkeypatch.setattr(  # the datamodule would read and tokenise the corpus: it must not start
        "lit_seq2seq.datamodule.TranslationDataModule.__init__",
        lambda self, *a, **k: built.append("datamodule"),
    )
    cfg = compose_train(tmp_path, "trainer=cpu", *overrides.split(" "))
    with pytest.raises(SystemExit) as exc, run.one_line_errors():
        train.build(cfg)
    text = str(exc.value)
    assert text.startswith("error: ") and message in text and "\n" not in text, text
    assert built == []


def test_every_shipped_config_is_in_range(tmp_path: Path) -> None:
    """The defaults and each experiment pass their own checks."""
    folder = Path(run.__file__).parents[1] / "configs" / "experiment"
    experiments = sorted(p.stem for p in folder.glob("*.yaml"))
    assert len(experiments) >= 10
    groups = [
        [f"data={d}"] for d in ("manythings", "giga_fren", "tatoeba_questions", "tatoeba_pairs")
    ]
    groups += [["model=devise", f"data={d}"] for d in ("devise_imagenette", "devise_imagenet")]
    groups += [["trainer=ddp_cpu"], ["trainer=cpu"]]  # trainer=ddp and gpu need CUDA here
    for overrides in [[], ["model=devise"], *groups, *[[f"experiment={e}"] for e in experiments]]:
        cfg = compose_train(tmp_path, *overrides)
        check_config(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
