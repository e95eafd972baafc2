"""The config of a run: compose it as ``train.py`` would, resolve the ``gpus`` shortcut, check
every number before anything is built, print it, and list a group's choices for ``--help``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only

from lit_common.one_line import ConfigError
from lit_common.precision import fast_precision
from lit_common.ranges import check_config

# `trainer.precision: ${fast_precision:${trainer.accelerator}}`: bf16 where the hardware has it.
OmegaConf.register_new_resolver("fast_precision", fast_precision, replace=True)


def resolve_gpus(trainer_cfg: DictConfig) -> None:
    """Turn the ``gpus: N`` shortcut into Lightning 2's accelerator/devices/strategy, in place."""
    with open_dict(trainer_cfg):
        gpus = trainer_cfg.pop("gpus", None)
    if gpus is None:
        return
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"trainer.gpus={gpus!r}: expected an int >= 1, or null for CPU/auto")
    available = torch.cuda.device_count()
    if available < gpus:
        raise ConfigError(
            f"trainer.gpus={gpus} but CUDA sees {available} GPU(s); use trainer.gpus=null to run "
            "on the CPU, or trainer=ddp_cpu to try DDP on CPU processes"
        )
    trainer_cfg.accelerator, trainer_cfg.devices = "gpu", gpus
    if gpus > 1 and trainer_cfg.get("strategy", "auto") == "auto":
        trainer_cfg.strategy = "ddp"


def compose(config_dir: str, overrides: Sequence[str], output_dir: str | Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, for scripts and tests.

    Interpolations of Hydra's runtime (``paths.output_dir``) point at ``output_dir``; the
    ``gpus`` shortcut is resolved as in a real run.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir, version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        del cfg.hydra
    resolve_gpus(cfg.trainer)
    return cfg


def check_numbers(cfg: DictConfig) -> None:
    """Every number of ``cfg`` against its range (``lit_common/ranges.py``), before anything is
    built: ``data.max_vocab=0`` fails here, in one line naming the key, not in spaCy later."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:  # e.g. ${data.synthetic.root} after synthetic=null
        first = str(err).strip().splitlines()[0]
        key = getattr(err, "full_key", None)
        raise ConfigError(f"{key}: {first}" if key else first) from None
    check_config(resolved)  # type: ignore[arg-type]


@rank_zero_only
def print_config(cfg: DictConfig) -> None:
    from rich.console import Console
    from rich.syntax import Syntax

    Console().print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml", theme="ansi_dark"))


def config_choices(config_dir: str, group: str) -> str:
    """The choices of a config group for ``--help`` (configs/hydra/default.yaml), without the
    abstract ones: ``base``/``*_base`` files with a mandatory ``???`` value, which only hold the
    settings their real choices share (``data/base.yaml``)."""

    def abstract(path: Path) -> bool:
        named = path.stem == "base" or path.stem.endswith("_base")
        return named and "???" in path.read_text(encoding="utf-8")

    paths = sorted((Path(config_dir) / group).glob("*.yaml"))
    return ", ".join(p.stem for p in paths if not abstract(p))
