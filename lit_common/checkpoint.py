"""Checkpoints: reading one safely (``weights_only``) outside training, finding the one to
resume (``ckpt_path=last``) and the one to use (the best of a monitored ``ModelCheckpoint``).

Both models store what inference needs besides weights under their own key (``translation``:
vocabularies; ``devise``: class vectors), so a file written by the other model, or not by Lightning
at all, is refused with a message that says which command writes the right one.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from lit_common.errors import InputError

log = logging.getLogger(__name__)
RESUMABLE = ("last.ckpt", "on_exception.ckpt")


class CheckpointError(InputError):
    """A file that is not a usable checkpoint of the expected model."""


def read_checkpoint(
    path: str | Path, key: str, what: str, command: str, map_location: str = "cpu"
) -> dict[str, Any]:
    """The checkpoint dict at ``path``, which must hold ``key``.

    Args:
        path: the ``.ckpt`` file.
        key: the entry the model's ``on_save_checkpoint`` writes.
        what: how the error names the expected file, e.g. "translation checkpoint (no
            vocabularies in it)".
        command: the command that writes such a checkpoint, for the error message.
        map_location: device for the tensors.

    Raises:
        CheckpointError: a missing or unreadable file, or one without ``key``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise CheckpointError(f"{path} is not a readable checkpoint ({err})") from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint: it holds Python objects besides tensors and "
            "plain values, and loading those could run code; refused"
        ) from None
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path} is not a readable checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        raise CheckpointError(f"{path} is not a {what}; make sure it was written by `{command}`")
    return checkpoint


def saved_run_value(checkpoint: str | Path, file: str, key: str) -> Any:
    """``key`` of the Hydra file ``file`` (``config.yaml``, ``hydra.yaml``) saved in the run that
    wrote ``checkpoint`` (``<run>/.hydra/`` beside ``<run>/checkpoints/x.ckpt``); None when the
    file is absent, damaged or lacks the key (it then says nothing about the run)."""
    saved = Path(checkpoint).parent.parent / ".hydra" / file
    if not saved.is_file():
        return None
    try:
        from omegaconf import OmegaConf

        return OmegaConf.select(OmegaConf.load(saved), key)
    except Exception:  # a damaged config says nothing about the run
        return None


def run_model(checkpoint: Path) -> str | None:
    """The ``model._target_`` of the run that wrote ``checkpoint`` (``<run>/checkpoints/x.ckpt``),
    from the config Hydra saved in ``<run>/.hydra/config.yaml``; None when there is none."""
    target = saved_run_value(checkpoint, "config.yaml", "model._target_")
    return target if isinstance(target, str) else None


def resolve_ckpt_path(
    ckpt_path: str | None,
    runs_root: str | Path,
    output_dir: str | Path,
    model_target: str | None = None,
) -> str | None:
    """``ckpt_path`` as a file: ``last`` is the newest ``last.ckpt`` or ``on_exception.ckpt`` of
    an earlier run under ``runs_root`` (each run writes into its own directory, so Lightning's own
    ``"last"`` would look in this run's empty one) of the same model: runs whose saved config
    names another ``model._target_`` than ``model_target`` are passed over.

    Raises:
        CheckpointError: a path that does not exist, or ``last`` with nothing to resume.
    """
    if ckpt_path is None:
        return None
    if str(ckpt_path) != "last":
        if not Path(ckpt_path).is_file():
            raise CheckpointError(f"ckpt_path={ckpt_path!r} does not exist")
        return str(ckpt_path)
    output = Path(output_dir).resolve()
    found = [
        p
        for p in Path(runs_root).glob("**/checkpoints/*.ckpt")
        if p.name in RESUMABLE and output not in p.resolve().parents
    ]
    others = [p for p in found if run_model(p) not in (None, model_target)] if model_target else []
    found = [p for p in found if p not in others]
    if not found:
        skipped = f" ({len(others)} of other models passed over)" if others else ""
        raise CheckpointError(
            f"ckpt_path=last: no {' or '.join(RESUMABLE)} of {model_target or 'this model'} under "
            f"{runs_root}{skipped}; give a path instead"
        )
    newest = max(found, key=lambda p: p.stat().st_mtime)
    log.info("resuming from %s", newest)
    return str(newest)


def best_checkpoint(trainer: Any) -> str:
    """The checkpoint to test and to use: the best of a monitored ``ModelCheckpoint``
    (``callbacks.best_checkpoint``), else the latest one; "" when none was written."""
    callbacks = trainer.checkpoint_callbacks
    monitored = [c for c in callbacks if getattr(c, "monitor", None) and c.best_model_path]
    for callback in [*monitored, *callbacks]:
        path = getattr(callback, "best_model_path", "") or getattr(callback, "last_model_path", "")
        if path:
            return str(path)
    return ""


def training_facts(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """What a checkpoint says about the run that wrote it, for people (the demo page shows it):
    its epoch and step, the best score of each monitored ``ModelCheckpoint`` (``{"val/bleu":
    53.2}``), the training time, and the config groups the run chose (``data``, ``experiment``,
    ...) from its saved Hydra config, when ``<run>/.hydra/hydra.yaml`` is beside it. Entries it
    cannot read are left out, never guessed."""
    facts: dict[str, Any] = {}
    for key in ("epoch", "global_step"):
        if isinstance(checkpoint.get(key), int):
            facts[key] = checkpoint[key]
    states = checkpoint.get("callbacks")
    best: dict[str, float] = {}
    for name, state in (states or {}).items() if isinstance(states, dict) else ():
        if not isinstance(state, dict):
            continue
        if str(name).startswith("ModelCheckpoint") and isinstance(state.get("monitor"), str):
            score = state.get("best_model_score")
            if isinstance(score, torch.Tensor) and score.numel() == 1:
                score = score.item()
            if isinstance(score, (int, float)):
                best[state["monitor"]] = float(score)
        elapsed = state.get("time_elapsed") if str(name) == "Timer" else None
        if isinstance(elapsed, dict) and isinstance(elapsed.get("train"), (int, float)):
            facts["train_seconds"] = float(elapsed["train"])
    if best:
        facts["best"] = best
    choices = _run_choices(path)
    if choices:
        facts["config"] = choices
    return facts


def _run_choices(checkpoint: str | Path) -> dict[str, str]:
    """``hydra.runtime.choices`` of the run that wrote ``checkpoint`` (group -> option), the
    groups that matter to a reader: data, model, experiment, trainer."""
    choices = saved_run_value(checkpoint, "hydra.yaml", "hydra.runtime.choices")
    if choices is None:
        return {}
    wanted = ("experiment", "data", "model", "trainer")
    return {g: str(choices[g]) for g in wanted if choices.get(g) not in (None, "null")}
