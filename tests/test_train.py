"""train.py: Hydra composition, the `gpus` shortcut, and a full fit through the configs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

import train
from callbacks import OneCycleScheduler, TeacherForcingScheduler
from lit_common import run
from lit_common.wandb_logger import WandbBestSummary
from lit_devise.synthetic import make_shapes
from lit_seq2seq.model import REGULARISER_RATES
from tests.conftest import DEVISE_RUN, REPO_ROOT, TINY_RUN, compose_train
from tests.helpers import run_module, run_train

# Fits models (seconds each): `make test-unit` leaves these out.
pytestmark = pytest.mark.train

TOY_MODEL = ("~model", "+model={_target_:tests.toy.make_toy_module,optimizer:adam,n_groups:2}")


def test_train_py_trains_and_prints_checkpoint_last(tmp_path: Path, data_dir: Path) -> None:
    overrides = [o for o in TINY_RUN if not o.startswith(("logger=", "trainer.max_epochs"))]
    proc = run_train(
        *overrides,
        "data.train.n_pairs=500",
        "trainer.max_epochs=1",
        f"paths.data_dir={data_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "_target_: lit_seq2seq.module.Seq2SeqModule" in proc.stdout  # the config is printed
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("checkpoint: ") and Path(last.split(" ", 1)[1]).is_file()
    offline_runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1, "W&B ran offline, without network"
    assert "wandb sync" in proc.stdout + proc.stderr


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="needs a machine with fewer than 2 GPUs")
def test_gpus_without_enough_cuda_is_one_clear_line(tmp_path: Path) -> None:
    """Also the run directory used twice: the first run's saved config is kept as .hydra.1/."""
    for attempt in range(2):
        proc = run_train("trainer.gpus=2", f"seed={attempt}", cwd=tmp_path)
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines() == [
            f"error: trainer.gpus=2 but CUDA sees {torch.cuda.device_count()} GPU(s); use "
            "trainer.gpus=null to run on the CPU, or trainer=ddp_cpu to try DDP on CPU processes"
        ]
    saved = [
        OmegaConf.load(tmp_path / "run" / d / "config.yaml").seed for d in (".hydra.1", ".hydra")
    ]
    assert saved == [0, 1], "the second run kept the first run's config beside its own"


def test_unknown_model_name_lists_the_choices(tmp_path: Path) -> None:
    proc = run_train("model=seq3seq", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Could not find 'model/seq3seq'" in proc.stderr and "seq2seq" in proc.stderr


def test_gpus_shortcut_translation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    cfg = OmegaConf.create({"gpus": 4, "accelerator": "auto", "devices": 1, "strategy": "auto"})
    run.resolve_gpus(cfg)
    assert OmegaConf.to_container(cfg) == {"accelerator": "gpu", "devices": 4, "strategy": "ddp"}
    cfg = OmegaConf.create({"gpus": 1, "strategy": "auto"})
    run.resolve_gpus(cfg)
    assert cfg.devices == 1 and cfg.strategy == "auto"
    with pytest.raises(run.ConfigError, match=r"trainer\.gpus=0: expected an int >= 1"):
        run.resolve_gpus(OmegaConf.create({"gpus": 0}))


@pytest.mark.parametrize(
    "choice", ["default", "seq2seq", "seq2seq_lesson", "one_cycle_use_clr_beta", "devise", "none"]
)
def test_callback_configs_instantiate(tmp_path: Path, choice: str) -> None:
    cfg = compose_train(tmp_path, f"callbacks={choice}")
    callbacks = run.instantiate_each(cfg.callbacks)
    types = {type(c).__name__ for c in callbacks}
    default = {"ModelCheckpoint", "InterruptCheckpoint", "RandomStateCheckpoint"}
    default |= {"RichProgressBar", "StopOnNonFiniteLoss"}
    expected = {
        "default": default,
        "seq2seq": default | {"OneCycleScheduler", "TeacherForcingScheduler"},
        "seq2seq_lesson": default | {"OneCycleScheduler", "TeacherForcingScheduler"},
        "one_cycle_use_clr_beta": {"OneCycleScheduler"},
        "devise": default | {"OneCycleScheduler"},
        "none": set(),
    }[choice]
    assert types == expected
    one_cycle = [c for c in callbacks if isinstance(c, OneCycleScheduler)]
    if choice == "one_cycle_use_clr_beta":
        assert one_cycle[0].three_phase and one_cycle[0].anneal_strategy == "linear"
    if choice == "seq2seq_lesson":
        assert (one_cycle[0].pct_start, one_cycle[0].div_factor) == (0.1, 20.0)
        assert not one_cycle[0].cycle_momentum and one_cycle[0].final_div_factor == 1.0
        assert one_cycle[0].max_lr == cfg.model.optimizer.lr


def test_train_fits_any_lightning_module_with_callbacks_from_config(tmp_path: Path) -> None:
    cfg = compose_train(
        tmp_path,
        *TOY_MODEL,
        "~data",
        "logger=csv",
        "callbacks=seq2seq_modern",  # one-cycle and a teacher-forcing decay to 0
        "~callbacks.best_checkpoint",  # the toy logs no val/bleu
        "callbacks.teacher_forcing.epochs=2",
        "callbacks.one_cycle.max_lr=[0.02,0.01]",
        "trainer=cpu",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
    )
    metrics = train.train(cfg)
    assert metrics["train/pr_force"] == 0.0  # 45 steps, decay over 30
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["train/lr_pg0"]]
    assert len(rows) == 45
    assert float(rows[0]["train/lr_pg0"]) == pytest.approx(0.02 / 25)
    assert float(rows[0]["train/pr_force"]) == 1.0
    assert float(rows[15]["train/pr_force"]) == pytest.approx(0.5)


def run_ddp(
    tmp_path: Path, run: tuple[str, ...], *overrides: str
) -> tuple[list[dict[str, str]], str]:
    """`python train.py` on 2 CPU processes: checks it ends with a checkpoint in one output dir,
    returns the CSV metric rows and what the processes wrote (log lines go to stdout)."""
    base = [o for o in run if not o.startswith(("trainer=", "trainer.max_epochs"))]
    proc = run_train(*base, "trainer=ddp_cpu", "trainer.max_epochs=2", *overrides,
                     f"paths.data_dir={tmp_path / 'data'}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("checkpoint: ") and Path(last.split(" ", 1)[1]).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"], "one output dir"
    with open(tmp_path / "run" / "csv" / "version_0" / "metrics.csv") as f:
        return list(csv.DictReader(f)), proc.stdout + proc.stderr


@pytest.mark.ddp
def test_train_py_seq2seq_on_two_cpu_processes(tmp_path: Path) -> None:
    # 411 train pairs: not a multiple of 2 ranks x 32
    # with every AWD-LSTM regulariser on: DropConnect's weights reach the fused kernels through
    # functional_call, and DDP must still receive each parameter's gradient
    # (the encoder without dropout between layers stays one fused multi-layer GRU, the decoder
    # runs layer by layer: weight drop on both paths)
    awd = [f"model.net.{side}_{name}=0.2" for side in ("enc", "dec") for name in REGULARISER_RATES]
    rows, _ = run_ddp(tmp_path, TINY_RUN, "data.train.n_pairs=457", *awd, "model.net.ar_alpha=1",
                      "model.net.tar_beta=1", "model.net.enc_locked_hidden=0.0")  # fmt: skip
    steps = {r["step"] for r in rows if r["train/lr"]}
    # at least ceil(411 / (2 x 32)) = 7 batches per rank per epoch; the sort-ish sampler may use
    # 5% more for cheaper boundaries, rounded up to equal counts: 8
    assert len(steps) == 2 * 8
    bleu = [float(r["val/bleu"]) for r in rows if r["val/bleu"]]
    assert bleu and all(0.0 <= b <= 100.0 for b in bleu)
    assert any(r["train/ar_tar"] for r in rows)


@pytest.mark.parametrize(
    ("name", "bidirectional", "attention", "teacher_forcing", "lr", "epochs"),
    [
        ("seq2seq_base", False, False, False, 3e-3, 12),
        ("seq2seq_bidir", True, False, False, 3e-3, 12),
        ("seq2seq_tf", False, False, True, 3e-3, 12),
        ("seq2seq_attn", False, True, True, 2e-3, 15),
        ("seq2seq_all", True, True, True, 2e-3, 15),
        ("seq2seq_modern", True, True, True, 2e-3, 15),
    ],
)
def test_lesson_experiments(
    tmp_path: Path,
    name: str,
    bidirectional: bool,
    attention: bool,
    teacher_forcing: bool,
    lr: float,
    epochs: int,
) -> None:
    cfg = compose_train(tmp_path, f"experiment={name}", "data=tatoeba_questions")
    module = hydra.utils.instantiate(cfg.model)
    net = module.config
    assert (net.bidirectional, net.attention, net.tie_weights) == (bidirectional, attention, True)
    assert (net.enc_emb_dim, net.enc_hidden, net.dec_hidden, net.enc_layers) == (300, 256, 300, 2)
    assert (net.enc_emb_dropout, net.enc_dropout, net.dec_dropout, net.out_dropout) == (
        0.15, 0.25, 0.1, 0.35,
    )  # fmt: skip
    assert (net.attention_style, net.init, net.emb_init_std, net.dec_emb_dropout) == (
        "lesson", "pytorch", None, 0.0,
    )  # fmt: skip
    optimizer = module.hparams.optimizer
    assert optimizer["_target_"] == "torch.optim.Adam" and optimizer["_partial_"]
    assert optimizer["lr"] == lr and tuple(optimizer["betas"]) == (0.8, 0.99)
    assert module.hparams.label_smoothing == 0.0 and module.hparams.gradient_clip_norm is None
    assert cfg.trainer.max_epochs == epochs and cfg.data.batch_size == 125
    assert (cfg.data.src_len_percentile, cfg.data.tgt_len_percentile) == (97, 99)
    assert cfg.experiment_name == name
    callbacks = {type(c).__name__: c for c in run.instantiate_each(cfg.callbacks)}
    assert ("TeacherForcingScheduler" in callbacks) == teacher_forcing
    assert callbacks["OneCycleScheduler"].max_lr == lr
    assert callbacks["ModelCheckpoint"].monitor == "val/bleu"
    if name == "seq2seq_modern":
        assert callbacks["OneCycleScheduler"].cycle_momentum
        assert callbacks["TeacherForcingScheduler"].shape == "cosine"
    else:
        assert not callbacks["OneCycleScheduler"].cycle_momentum
        if teacher_forcing:
            assert callbacks["TeacherForcingScheduler"].granularity == "epoch"
    datamodule = hydra.utils.instantiate(cfg.data)
    assert str(datamodule.corpora["valid"].path).endswith("fra-eng/questions.valid.tsv")
    assert datamodule.emb_dims == {"src": 300, "tgt": 300}


@pytest.mark.parametrize(
    ("name", "bidirectional", "attention", "teacher_forcing"),
    [
        ("seq2seq_tuned_base", False, False, False),
        ("seq2seq_tuned_bidir", True, False, False),
        ("seq2seq_tuned_tf", False, False, True),
        ("seq2seq_tuned_attn", False, True, True),
        ("seq2seq_tuned", True, True, True),
    ],
)
def test_tuned_experiments_share_the_recipe(
    tmp_path: Path, name: str, bidirectional: bool, attention: bool, teacher_forcing: bool
) -> None:
    cfg = compose_train(tmp_path, f"experiment={name}", "data=tatoeba_questions")
    default = compose_train(tmp_path)  # `python train.py`: the same recipe at CPU size
    module = hydra.utils.instantiate(cfg.model)
    net = module.config
    assert (net.bidirectional, net.attention) == (bidirectional, attention)
    assert (net.enc_emb_dim, net.enc_hidden, net.dec_hidden, net.attn_size) == (300, 256, 300, 300)
    for key in ("attention_style", "init", "emb_init_std", "out_dropout", "dec_emb_dropout"):
        assert cfg.model.net[key] == default.model.net[key], key
    assert net.attention_style == "output" and net.init == "xavier"
    for key in ("optimizer", "scheduler", "label_smoothing", "gradient_clip_norm"):
        assert cfg.model[key] == default.model[key], key
    optimizer = module.hparams.optimizer
    assert (optimizer["_target_"], optimizer["lr"]) == ("torch.optim.Adam", 3e-3)
    assert tuple(optimizer["betas"]) == (0.9, 0.999) and module.hparams.label_smoothing == 0.1
    assert cfg.experiment_name == name and cfg.data.batch_size == 125
    assert (cfg.data.src_len_percentile, cfg.data.tgt_len_percentile) == (100, 100)
    callbacks = {type(c).__name__: c for c in run.instantiate_each(cfg.callbacks)}
    assert callbacks["ModelCheckpoint"].monitor == "val/bleu"
    assert callbacks["ModelCheckpoint"].mode == "max"
    assert not callbacks["OneCycleScheduler"].cycle_momentum
    assert ("TeacherForcingScheduler" in callbacks) == teacher_forcing
    if teacher_forcing:
        forcing = callbacks["TeacherForcingScheduler"]
        assert (forcing.start, forcing.end) == (1.0, 1.0)  # full teacher forcing


SEQ2SEQ_EXPERIMENTS = sorted(
    p.stem for p in (REPO_ROOT / "configs" / "experiment").glob("seq2seq*.yaml")
)


@pytest.mark.parametrize("name", SEQ2SEQ_EXPERIMENTS)
def test_experiments_keep_every_regulariser_off(tmp_path: Path, name: str) -> None:
    """The AWD-LSTM switches came after these recipes' results: none may move them, except the
    recipe the study chose (``seq2seq_awd``), which sets its own."""
    cfg = compose_train(tmp_path, f"experiment={name}", "data=tatoeba_questions")
    net = cfg.model.net
    rates = {f"{side}_{rate}": net[f"{side}_{rate}"] for side in ("enc", "dec")
             for rate in REGULARISER_RATES}  # fmt: skip
    rates |= {"ar_alpha": net.ar_alpha, "tar_beta": net.tar_beta}
    assert len(rates) == 14
    on = {key: value for key, value in rates.items() if value != 0.0}
    assert on == AWD_RECIPE.get(name, {}), on


def test_callbacks_are_importable_by_name() -> None:
    assert OneCycleScheduler.__module__ == "callbacks.one_cycle"
    assert TeacherForcingScheduler.__module__ == "callbacks.teacher_forcing"


def test_train_py_model_devise_default_run(tmp_path: Path) -> None:
    """The interface: `python train.py model=devise` runs offline and prints the checkpoint last."""
    proc = run_train("model=devise", f"paths.data_dir={tmp_path / 'data'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "_target_: lit_devise.module.DeviseModule" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("checkpoint: ") and Path(last.split(" ", 1)[1]).is_file()
    assert "held out: blue_triangle, yellow_cross" in proc.stdout + proc.stderr
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # The run's summary keeps best values: the metric definitions are in the run's record log.
    log = next(runs[0].glob("run-*.wandb")).read_bytes()
    assert b"val/hit_at_*" in log and b"zeroshot/hit_at_*" in log and b"val/loss" in log


@pytest.mark.ddp
def test_train_py_devise_on_two_cpu_processes(tmp_path: Path) -> None:
    csv_too = (
        "+logger.csv={_target_:pytorch_lightning.loggers.CSVLogger,name:csv,"
        "save_dir:'${paths.output_dir}'}"
    )
    # 20 x 13 images and one more: 261, which 2 ranks do not divide. 198 or 199 train images:
    # not a multiple of 2 ranks x 64.
    shapes = make_shapes(tmp_path / "data" / "shapes", n_per_class=13, size=64, dim=50, seed=0)
    first = sorted((shapes / "images" / "red_circle").iterdir())[0]
    shutil.copy(first, first.with_name("extra.png"))
    rows, output = run_ddp(
        tmp_path, DEVISE_RUN, "data.synthetic.n_per_class=13", "logger=wandb", csv_too
    )
    for rank, n in ((0, 131), (1, 130)):
        assert f"precompute share of rank {rank} of 2: {n} images" in output, output[-3000:]
    steps = {r["step"] for r in rows if r["train/lr"]}
    assert len(steps) == 2 * 2  # 99-100 images per rank: batches of 64 and the rest
    # Both ranks computed a share of the activations; the merged cache is the one a single
    # process writes (the same rows in the same order; float16, so equal up to rounding).
    cached = next((tmp_path / "data" / "cache" / "devise").glob("features-*"))
    assert not list(cached.parent.glob("*.shards-*")), "the shares are removed once merged"
    overrides = [o for o in DEVISE_RUN if not o.startswith(("trainer=", "trainer.max"))]
    cfg = compose_train(tmp_path / "single", *overrides, "data.synthetic.n_per_class=13",
                        f"paths.data_dir={tmp_path / 'data'}",
                        f"data.cache_dir={tmp_path / 'single_cache'}")  # fmt: skip
    single = hydra.utils.instantiate(cfg.data)
    single.prepare_data()
    alone = next((tmp_path / "single_cache").glob("features-*"))
    assert alone.name == cached.name
    report = json.loads((cached / "report.json").read_text())
    assert report["images"] == 261 and report == json.loads((alone / "report.json").read_text())
    np.testing.assert_array_equal(np.load(cached / "ok.npy"), np.load(alone / "ok.npy"))
    np.testing.assert_allclose(
        np.load(cached / "features.npy").astype(np.float32),
        np.load(alone / "features.npy").astype(np.float32),
        rtol=2e-3,
        atol=2e-3,
    )
    # Hit rates are fractions; every rank's share counted, so each logged value is in [0, 1].
    for key in ("val/hit_at_1", "zeroshot/hit_at_1", "val/loss"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values, key
        low, high = (0.0, 2.0) if key == "val/loss" else (0.0, 1.0)  # loss: 1 - cosine
        assert all(low <= v <= high for v in values), (key, values)
    # Rank 0 alone writes the W&B run and the figures.
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1
    media = [p.relative_to(tmp_path) for p in (tmp_path / "run" / "wandb").rglob("*.png")]
    assert any("train/schedules" in str(p) for p in media), media
    assert any("val/search" in str(p) for p in media), media


@pytest.mark.parametrize("logger", ["csv", "tensorboard"])
def test_loggers_get_the_same_metric_names_and_the_config(
    tmp_path: Path, data_dir: Path, logger: str
) -> None:
    overrides = [o for o in DEVISE_RUN if not o.startswith(("logger=", "trainer.max_epochs"))]
    cfg = compose_train(tmp_path, *overrides, f"logger={logger}", "trainer.max_epochs=1",
                        f"paths.data_dir={data_dir}")  # fmt: skip
    train.train(cfg)
    names = (
        "train/loss",
        "train/lr",
        "val/loss",
        "val/hit_at_1",
        "zeroshot/hit_at_1",
        "zeroshot/cos",
    )
    if logger == "csv":
        written = (tmp_path / "csv" / "version_0" / "metrics.csv").read_text().splitlines()[0]
        hparams = (tmp_path / "csv" / "version_0" / "hparams.yaml").read_text()
    else:
        events = next((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
        written = events.read_bytes().decode("latin-1")
        hparams = (tmp_path / "tensorboard" / "hparams.yaml").read_text()
    assert all(name in written for name in names)
    if logger == "csv":  # the run's schedule figure, beside the metrics
        assert list((tmp_path / "csv" / "version_0" / "train_schedules").glob("step*.png"))
    else:  # the figures W&B users get, as TensorBoard images (PNG data under their tags)
        assert "train/schedules" in written and "val/search" in written
        assert written.count("\x89PNG") >= 2
    assert "holdout_classes" in hparams  # the whole config, not only the model's


def test_tensorboard_gets_samples_as_a_table_and_heatmaps(tmp_path: Path) -> None:
    from lit_seq2seq.reporting import log_attention, log_samples

    class Writer:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, int]] = []

        def add_text(self, key: str, text: str, global_step: int) -> None:
            self.calls.append(("text", key, global_step))
            self.text = text

        def add_figure(self, key: str, figure: object, global_step: int, **_: object) -> None:
            self.calls.append(("figure", key, global_step))

    logger = type("TensorBoardLogger", (), {"experiment": Writer(), "log_dir": str(tmp_path)})()
    trainer = type("T", (), {"loggers": [logger], "default_root_dir": str(tmp_path)})()
    log_samples(trainer, "val/samples", [("où ?", "where?", "where | why?")], 7)
    heat = (["où", "?"], ["where", "?"], torch.rand(2, 2))
    log_attention(trainer, "val/attention", [heat], 7)
    writer = logger.experiment
    assert writer.calls == [("text", "val/samples", 7), ("figure", "val/attention", 7)]
    assert "| source | reference | hypothesis |" in writer.text and "where \\| why?" in writer.text
    assert (tmp_path / "samples" / "step0000007.tsv").is_file(), "the files are still written"


def test_main_returns_the_optimized_metric_for_sweepers(tmp_path: Path, data_dir: Path) -> None:
    """`main()` returns the best value of `optimized_metric` (DeViSE: val/loss, its checkpoint's
    monitor), as a Hydra sweeper reads it."""
    overrides = [o for o in DEVISE_RUN if not o.startswith("trainer.max_epochs")]
    cfg = compose_train(tmp_path, *overrides, "trainer.max_epochs=3",
                        f"paths.data_dir={data_dir}")  # fmt: skip
    assert cfg.optimized_metric == "val/loss"
    value = train.main(cfg)
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        losses = [float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")]
    assert len(losses) == 3 and value == pytest.approx(min(losses))
    assert run.optimized_value({"val/loss": 2.0}, "val/loss") == 2.0
    assert run.optimized_value({"val/loss": 2.0}, None) is None
    with pytest.raises(SystemExit, match=r"optimized_metric='val/bleu' was not logged; logged: "):
        run.optimized_value({"val/loss": 2.0}, "val/bleu")
    seq2seq = compose_train(tmp_path / "s", "logger=csv")
    assert seq2seq.optimized_metric == "val/bleu"


# A translator run of seconds: 400 pairs, no vectors, 16-wide layers.
# What `experiment=seq2seq_awd` turns on (the study's choice; README "Regularising seq2seq").
AWD_RECIPE: dict[str, dict[str, float]] = {}
SMALL_SEQ2SEQ = (
    "data.train.n_pairs=400",
    "data.src_vectors.kind=none",
    "data.tgt_vectors.kind=none",
    *(f"model.net.{key}=16" for key in ("enc_emb_dim", "enc_hidden", "dec_emb_dim", "dec_hidden")),
    "model.net.attn_size=16",
)
CONSOLE_SCRIPTS = ("lit-train", "lit-plot-schedules", "lit-translate", "lit-devise-index",
                   "lit-devise-search", "lit-demo")  # fmt: skip


@pytest.fixture(scope="module")
def console_help(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each console script's ``--help``, run from a directory that is not the repository; the
    five processes start together (each is mostly a new interpreter importing torch)."""
    where = tmp_path_factory.mktemp("anywhere")
    started = {}
    for script in CONSOLE_SCRIPTS:
        exe = Path(sys.executable).parent / script
        assert exe.is_file(), f"{exe} missing: install the project (make test does) first"
        started[script] = subprocess.Popen(
            [str(exe), "--help"], cwd=where, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
    done = {}
    for script, proc in started.items():
        out, err = proc.communicate(timeout=300)
        done[script] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.mark.xdist_group("console_scripts")
@pytest.mark.parametrize("script", CONSOLE_SCRIPTS)
def test_console_scripts_work_from_any_directory(
    console_help: dict[str, subprocess.CompletedProcess[str]], script: str
) -> None:
    """After `pip install` (make test installs the project), each console script answers --help
    from a directory that is not the repository; `lit-train --help` lists only real choices."""
    proc = console_help[script]
    assert proc.returncode == 0, proc.stderr[-2000:]
    if script == "lit-train":
        assert "Examples:" in proc.stdout and "python train.py model=devise" in proc.stdout
        data = next(line for line in proc.stdout.splitlines() if line.strip().startswith("data:"))
        assert "tatoeba_questions" in data and " base" not in data and "devise_base" not in data
        assert "seq2seq_base" in proc.stdout, "a real choice ending in _base is kept"


def test_a_wheel_install_finds_its_configs_from_any_directory(tmp_path: Path) -> None:
    """`pip install .` (not editable) ships configs/ as lit_common/configs (setup.cfg), so the
    installed `train` module finds them with no checkout around: built from a copy of the
    repository, installed into a folder of its own, run from a third one."""
    import os
    import shutil

    source = tmp_path / "source"
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ruff_cache", ".pytest_cache")
    top = {"logs", "data", "build", "dist", "outputs", "wandb"}  # not configs/data

    def ignore(folder: str, names: list[str]) -> set[str]:
        if Path(folder) != REPO_ROOT:
            return set(anywhere(folder, names))
        hidden = {n for n in names if n.startswith(".")}  # .venv*, .git, .hypothesis, caches
        return set(anywhere(folder, names)) | {n for n in names if n in top} | hidden

    shutil.copytree(REPO_ROOT, source, ignore=ignore)
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    assert (site / "lit_common" / "configs" / "train.yaml").is_file()
    assert not (site / "configs").exists(), "no top-level `configs` package"
    elsewhere.mkdir()
    code = "import sys, train; print(train.__file__); print(train.CONFIG_DIR); "
    code += "sys.argv = ['lit-train', '--help']; train.main()"
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, config_dir = proc.stdout.splitlines()[:2]
    assert where == str(site / "train.py")
    assert config_dir == str(site / "lit_common" / "configs")
    assert "Examples:" in proc.stdout and "tatoeba_questions" in proc.stdout


def test_lit_train_trains_from_another_directory(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "lit-train"
    small = list(SMALL_SEQ2SEQ)
    proc = subprocess.run([str(exe), "trainer.max_epochs=1", "logger=csv", "trainer=cpu", *small],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("checkpoint: ") and Path(last.split(" ", 1)[1]).is_file()
    assert Path(last.split(" ", 1)[1]).resolve().is_relative_to(tmp_path.resolve())


def test_wandb_summary_keeps_best_values() -> None:
    class Experiment:
        def __init__(self) -> None:
            self.defined: dict[str, str] = {}

        def define_metric(self, name: str, summary: str) -> None:
            self.defined[name] = summary

    WandbLogger = type("WandbLogger", (), {"experiment": Experiment()})
    logger = WandbLogger()
    monitored = ModelCheckpoint(monitor="val/acc", mode="max")  # a third model's metric
    trainer = type("T", (), {"is_global_zero": True, "loggers": [logger],
                             "checkpoint_callbacks": [ModelCheckpoint(), monitored]})()  # fmt: skip
    WandbBestSummary().on_fit_start(trainer, None)  # type: ignore[arg-type]
    defined = logger.experiment.defined
    assert defined["val/bleu"] == "max" and defined["val/loss"] == "min"
    assert defined["val/hit_at_*"] == "max" and defined["zeroshot/hit_at_*"] == "max"
    assert defined["val/acc"] == "max"


def test_awd_study_runs_resumes_from_its_storage_and_reports_importance(tmp_path: Path) -> None:
    """`python train.py -m hparams_search=seq2seq_awd` with a SQLite storage: 2 tiny trials, then
    a second sweep continues the same study (3 trials, job folders by trial number), and
    `python -m lit_common.study` reads the storage."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    small = [*SMALL_SEQ2SEQ, "trainer.max_epochs=1", "+trainer.limit_train_batches=4",
             "logger=csv", "data=synthetic", "trainer=cpu"]  # fmt: skip

    def sweep(n_trials: int) -> None:
        cmd = [sys.executable, str(REPO_ROOT / "train.py"), "-m", "hparams_search=seq2seq_awd",
               f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.storage={storage}",
               "hydra.sweeper.study_name=tiny", f"hydra.sweep.dir={tmp_path / 'sweep'}",
               f"paths.data_dir={tmp_path / 'data'}", *small]  # fmt: skip
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    sweep(2)
    sweep(1)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1", "2"]
    for trial in ("0", "1", "2"):
        assert len(list((tmp_path / "sweep" / trial / "checkpoints").glob("best-*.ckpt"))) == 1
    # trial 0 is the queued reference, every regulariser off (the tuned recipe as it is)
    config = OmegaConf.load(tmp_path / "sweep" / "0" / ".hydra" / "config.yaml")
    net = config.model.net
    assert all(
        net[f"{side}_{name}"] == 0.0 for side in ("enc", "dec") for name in REGULARISER_RATES
    )
    assert config.trainer.max_epochs == 1 and config.data.train.n_pairs == 400
    assert config.trainer.limit_train_batches == 4
    best = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert "model.net.enc_weight_drop" in best.best_params and 0.0 <= best.best_value <= 100.0
    proc = run_module("lit_common.study", "--storage", storage, "--study", "tiny", "--out",
                      str(tmp_path / "figures"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["completed_trials"] == 3 and result["best_value"] == best.best_value
    assert (
        set(result["importance_fanova"]) == set(result["importance_mdi"]) == set(best.best_params)
    )
    figures = sorted(Path(f).name for f in result["figures"])
    assert figures == ["importance.png", "importance_mdi.png", "slice.png"]
    devise = compose_train(tmp_path / "d", "model=devise", "hparams_search=devise_optuna")
    assert devise.optimized_metric == "val/loss"


def test_two_sweeps_at_once_share_one_journal_study(tmp_path: Path) -> None:
    """Parallel studies: two `python train.py -m` workers started together on one
    `journal:///FILE` storage (what a cluster's jobs share through a network file system), 2
    trials each: the study holds 4 distinct completed trials, each worker ran its own."""
    storage = f"journal:///{tmp_path / 'shared' / 'study.log'}"
    small = [*SMALL_SEQ2SEQ, "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
             "logger=csv", "data=synthetic", "data.train.n_pairs=200", "trainer=cpu"]  # fmt: skip
    command = [sys.executable, str(REPO_ROOT / "train.py"), "-m", "hparams_search=seq2seq_awd",
               "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}",
               "hydra.sweeper.study_name=shared", f"paths.data_dir={tmp_path / 'data'}",
               *small]  # fmt: skip
    workers = {
        name: subprocess.Popen(
            [*command, f"hydra.sweep.dir={tmp_path / name}"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("worker_a", "worker_b")
    }
    for proc in workers.values():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    from lit_common.study import load

    trials = load(storage, "shared").trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    ran = {name: sorted(p.name for p in (tmp_path / name).iterdir() if p.is_dir())
           for name in workers}  # fmt: skip
    assert sorted(ran["worker_a"] + ran["worker_b"]) == ["0", "1", "2", "3"]
    assert len(ran["worker_a"]) == len(ran["worker_b"]) == 2
    proc = run_module("lit_common.study", "--storage", f"journal:///{tmp_path / 'none.log'}",
                      "--study", "shared")  # fmt: skip
    assert proc.returncode != 0 and "no such file" in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model.net.rnn_type=rnn",), "rnn_type='rnn' unknown; valid: ['gru', 'lstm']"),
        (("model.net.attention_style=luong",), "attention_style='luong' unknown; valid: "),
        (
            ("model.label_smoothing=1.0",),
            "label_smoothing=1.0 is out of range: expected a finite number in [0, 1)",
        ),
        (
            ("model.optimizer._target_=torch.optim.Adamm",),
            "optimizer._target_='torch.optim.Adamm' cannot be imported "
            "(torch.optim has no 'Adamm')",
        ),
        (("data.valid_fraction=1.5",), "data.valid_fraction=1.5 is out of range"),
        (("data.batch_size=0",), "data.batch_size=0 is out of range"),
        (("data.chunk_batches=0",), "data.chunk_batches=0 is out of range"),
        (("model=devise", "model.loss=l2"), "loss='l2' unknown; valid: "),
        (("model=devise", "data.synthetic=null"), "data.images: ConfigTypeError raised while"),
        (("callbacks.teacher_forcing.granularity=month",), "TeacherForcingScheduler(granularity="),
        (("callbacks.one_cycle.pct_start=1.5",), "OneCycleScheduler(pct_start=1.5)"),
    ],
)
def test_bad_settings_are_one_error_line(
    tmp_path: Path, data_dir: Path, overrides: tuple[str, ...], message: str
) -> None:
    """Every bad setting, whichever package checks it, derives from InputError: ``main`` ends in
    one ``error:`` line naming the key, the value and what is valid (SystemExit, status 1)."""
    small = [] if overrides[0] == "model=devise" else list(SMALL_SEQ2SEQ)
    cfg = compose_train(tmp_path, *small, *overrides, "logger=csv", "trainer=cpu",
                        f"paths.data_dir={data_dir}")  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        train.main(cfg)
    error = str(exit_info.value.code)
    assert error.startswith("error: ") and "\n" not in error and message in error, error


def test_a_bad_setting_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The same through the command line: exit status 1, one ``error:`` line on stderr."""
    proc = run_train(*SMALL_SEQ2SEQ, "model.net.rnn_type=rnn", "logger=csv", "trainer=cpu",
                     f"paths.data_dir={tmp_path / 'data'}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: model.net.rnn_type='rnn' unknown; valid: ['gru', 'lstm']"] or (
        len(errors) == 1 and "rnn_type='rnn' unknown; valid: ['gru', 'lstm']" in errors[0]
    ), proc.stderr[-2000:]
