"""``DeviseModule``: train ``DeviseNet`` to put an image where its label's word vector is.

Loss is ``1 - cosine(prediction, label vector)`` (the lesson's), or L1. Metrics:

- ``train/loss``, ``train/cos``; ``val/loss``, ``val/cos``: on the classes seen in training;
- ``val/hit_at_k`` (flat hit@k, Frome et al. 2013, section 4.1): the true class is among the
  ``k`` training classes whose vectors are nearest (cosine) to the prediction;
- ``zeroshot/hit_at_k``: the same on images of held-out classes, ranked among the held-out
  classes only (the paper's zero-shot protocol, section 4.2); ``zeroshot/gen_hit_at_k`` ranks them
  among all classes, seen ones included, which is harder.

``k`` values not smaller than the number of candidates are not logged (they are trivially 1). Each
validation also logs a grid: for a few class names (held-out ones first), the nearest validation
images. The class list, vectors and data settings are stored in the checkpoint, so
``from_checkpoint`` needs nothing else to embed images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric, Metric

from lit_common.checkpoint import CheckpointError
from lit_common.errors import InputError, check_choice
from lit_common.optim import build, partial_config
from lit_common.ranges import Int, Range, Real, check_ranges
from lit_common.reporting import log_figure
from lit_common.schema import require, require_strings
from lit_common.sizes import BuiltFromData
from lit_devise.model import DeviseNet, DeviseNetConfig
from lit_devise.plots import Cell, search_grid
from lit_devise.transforms import INTERPOLATIONS, canonical_weights

LOSSES = ("cosine", "l1")
EVAL_STAGES = ("val", "zeroshot")
BACKBONE_KEYS = ("backbone", "weights", "weights_path", "init_seed")
__all__ = ["CheckpointError", "ConfigMismatchError", "DeviseModule", "HitAtK", "devise_loss"]


RESUME_KEYS = (  # model_info entries a resumed run must share with the checkpoint
    ("class_ids", "classes"),
    ("seen", "hold-out classes"),
    ("transform", "preprocessing"),
    ("backbone", "backbone"),
)


def _comparable(key: str, value: Any) -> Any:
    """``value`` as what it means: a checkpoint from before ``interpolation`` was a setting used
    bilinear resizing; weights by torchvision's full name; a weights file by its size and mtime
    (the same file reached from another directory is the same file)."""
    if key == "transform" and isinstance(value, dict):
        return {"interpolation": "bilinear", **value}
    if key == "backbone" and isinstance(value, dict):
        path = value.get("weights_path")
        stat = os.stat(path) if path and os.path.isfile(path) else None
        return {
            **value,
            "weights": canonical_weights(str(value.get("backbone")), value.get("weights")),
            "weights_path": [stat.st_size, stat.st_mtime_ns] if stat else path,
        }
    return value


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigMismatchError(InputError):
    """Model and data settings that cannot work together; the message says which keys."""


class HitAtK(Metric):
    """Share of rows whose target is among the ``k`` highest-scoring candidates, for each ``k``."""

    full_state_update = False

    def __init__(self, ks: Sequence[int]) -> None:
        super().__init__()
        self.ks = list(ks)
        self.add_state("hits", torch.zeros(len(self.ks)), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        """scores: (batch, n_candidates); target: (batch,) candidate index of the true label."""
        true = scores.gather(1, target[:, None])  # (batch, 1)
        rank = (scores > true).sum(dim=1)  # 0 = best; ties count in the target's favour
        ks = torch.tensor(self.ks, device=scores.device)
        self.hits += (rank[:, None] < ks[None, :]).sum(dim=0).float()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.hits / self.total.clamp(min=1)


def devise_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """pred, target: (batch, dim). ``cosine``: mean of 1 - cos; ``l1``: mean absolute error."""
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()
    return F.l1_loss(pred, target)


DEFAULT_OPTIMIZER = {
    "_target_": "torch.optim.AdamW",
    "lr": 1e-3,
    "betas": [0.9, 0.99],
    "weight_decay": 1e-4,
}


class DeviseModule(BuiltFromData, pl.LightningModule):
    """Lightning wrapper of ``DeviseNet``; built once the data's class vectors are known.

    Args:
        net: architecture (``DeviseNetConfig`` or its fields as a dict).
        loss: ``cosine`` (lesson) or ``l1``.
        optimizer: any optimizer as a Hydra ``_partial_`` config (default ``torch.optim.AdamW``);
            its ``lr`` is the head's (``callbacks.OneCycleScheduler`` sets LRs per step when used).
        backbone_lr: backbone learning rate when it is not frozen (fine-tuning: lower than the
            head's).
        hit_ks: the ``k`` of hit@k.
        n_grid_queries: class names queried in the validation search grid.
        n_grid_results: images shown per query.
        devise: class list, vectors and data settings; given when restoring a checkpoint, else
            taken from the datamodule at fit time.
    """

    RANGES: ClassVar[dict[str, Range]] = {
        **{f"net.{key}": valid for key, valid in DeviseNetConfig.RANGES.items()},
        "backbone_lr": Real(0.0),
        "hit_ks[]": Int(1, 100_000),
        "n_grid_queries": Int(0, 100),
        "n_grid_results": Int(1, 100),
    }

    def __init__(
        self,
        net: DeviseNetConfig | dict[str, Any],
        loss: str = "cosine",
        optimizer: dict[str, Any] | None = None,
        backbone_lr: float = 1e-4,
        hit_ks: Sequence[int] = (1, 2, 5, 10, 20),
        n_grid_queries: int = 4,
        n_grid_results: int = 6,
        devise: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_ranges(locals(), self.RANGES)
        optimizer = partial_config(optimizer or DEFAULT_OPTIMIZER, "optimizer")
        if "lr" not in optimizer:
            raise InputError("optimizer: give its lr (the head's learning rate)")
        check_choice("loss", loss, LOSSES)
        if not hit_ks:
            raise InputError("hit_ks=[]: give at least one k, e.g. [1, 5]")
        config = net if isinstance(net, DeviseNetConfig) else DeviseNetConfig(**net)
        self.save_hyperparameters(
            {
                "net": config.to_dict(),
                "loss": loss,
                "optimizer": optimizer,
                "backbone_lr": backbone_lr,
                "hit_ks": sorted(hit_ks),
                "n_grid_queries": n_grid_queries,
                "n_grid_results": n_grid_results,
            }
        )
        self.config = config
        self.net: DeviseNet | None = None
        self.info: dict[str, Any] | None = None
        ks = sorted(hit_ks)
        self.losses = torch.nn.ModuleDict({s: MeanMetric() for s in EVAL_STAGES})
        self.cosines = torch.nn.ModuleDict({s: MeanMetric() for s in EVAL_STAGES})
        self.hits = torch.nn.ModuleDict(
            {"val": HitAtK(ks), "zeroshot": HitAtK(ks), "zeroshot_gen": HitAtK(ks)}
        )
        self._shown: list[tuple[torch.Tensor, torch.Tensor, list[str]]] = []
        if devise is not None:
            self.build_net(devise)

    # -- construction (lit_common.sizes: built from the data's model_info, kept in checkpoints) --
    info_key = "devise"
    info_keys = ("class_ids", "class_names", "seen", "class_vectors", "precompute", "backbone")
    info_what = "DeViSE checkpoint (no class vectors in it)"
    train_command = "python train.py model=devise"

    @property
    def devise(self) -> dict[str, Any] | None:
        """Class list, class vectors and data settings: what search needs besides weights
        (``DeviseDataModule.model_info``)."""
        return self.info

    def build_net(self, info: dict[str, Any]) -> None:
        self.info = info
        vectors = torch.as_tensor(info["class_vectors"], dtype=torch.float32)
        seen = torch.tensor(info["seen"], dtype=torch.bool)
        self.register_buffer("class_vectors", vectors, persistent=False)
        self.register_buffer("unit_vectors", F.normalize(vectors, dim=1), persistent=False)
        self.register_buffer("seen_idx", seen.nonzero().flatten(), persistent=False)
        self.register_buffer("unseen_idx", (~seen).nonzero().flatten(), persistent=False)
        self.net = DeviseNet(self.config, vectors.size(1))

    @classmethod
    def check_info(cls, info: Any) -> None:
        """Classes, names and seen flags of one length, class vectors (classes, dim) and
        finite, preprocessing sizes in range: what a damaged or hand-made checkpoint breaks."""
        super().check_info(info)
        require(info, {"precompute": bool, "backbone": dict, "seen": list}, "its devise entry")
        ids = require_strings(info["class_ids"], "its devise class_ids")
        names = require_strings(info["class_names"], "its devise class_names")
        vectors = info["class_vectors"]
        if not isinstance(vectors, torch.Tensor) or vectors.ndim != 2:
            raise CheckpointError("its class_vectors are not a (classes, dim) tensor")
        if not len(ids) == len(names) == len(info["seen"]) == len(vectors) > 0:
            raise CheckpointError(
                f"{len(ids)} class ids, {len(names)} names, {len(info['seen'])} seen flags and "
                f"{len(vectors)} class vectors: they must be as many, and more than none"
            )
        if not all(isinstance(s, bool) for s in info["seen"]):
            raise CheckpointError("its seen flags are not booleans")
        if not torch.isfinite(vectors).all():
            raise CheckpointError("its class vectors contain NaN or inf")
        cls.check_transform(info.get("transform"))

    @staticmethod
    def check_transform(transform: Any) -> None:
        """The preprocessing a checkpoint keeps (``eval_transform``'s arguments): every field
        present, of its type and in range, so a damaged checkpoint is one line, not a TypeError
        when an image is first embedded."""
        if not isinstance(transform, dict):
            raise CheckpointError("its preprocessing ('transform') is missing or not a mapping")
        what = "its preprocessing"
        require(
            transform,
            {"image_size": int, "resize_ratio": (int, float), "mean": list, "std": list},
            what,
        )
        Int(8, 4096).check("transform.image_size", transform["image_size"])
        Real(0.0, 1.0, low_open=True).check("transform.resize_ratio", transform["resize_ratio"])
        for key in ("mean", "std"):
            values = transform[key]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            if len(values) not in (1, 3) or not numbers:
                raise CheckpointError(f"{what}: {key!r} should be 1 or 3 numbers, got {values!r}")
            low = Real(0.0, low_open=True) if key == "std" else Real()
            for value in values:
                low.check(f"transform.{key}", value)
        interpolation = transform.get("interpolation", "bilinear")
        check_choice(
            "interpolation", interpolation, sorted(INTERPOLATIONS), CheckpointError, f"{what}: "
        )

    def check_data(self, info: dict[str, Any], datamodule: Any) -> None:
        mine = {k: getattr(self.config, k) for k in BACKBONE_KEYS}
        if info["precompute"] and (not self.config.freeze or mine != info["backbone"]):
            raise ConfigMismatchError(
                f"data.precompute=true caches activations of backbone {info['backbone']} but the "
                f"model has {mine} with freeze={self.config.freeze}; precompute needs the same "
                "frozen backbone: set data.precompute=false to fine-tune"
            )

    def check_resume(self, saved: dict[str, Any]) -> None:
        """Refuse to continue a run on other classes, hold-out, label vectors, preprocessing or
        backbone: the scores would mean something else (zero-shot on a class trained on)."""
        assert self.info is not None
        differ = []
        for key, what in RESUME_KEYS:
            mine, theirs = _comparable(key, self.info.get(key)), _comparable(key, saved.get(key))
            if mine != theirs:
                differ.append(f"{what} (checkpoint {_short(theirs)}, data {_short(mine)})")
        mine_v = torch.as_tensor(self.info["class_vectors"], dtype=torch.float32)
        theirs_v = torch.as_tensor(saved["class_vectors"], dtype=torch.float32)
        if mine_v.shape != theirs_v.shape or not torch.allclose(mine_v, theirs_v, atol=1e-5):
            differ.append("the classes' word vectors")
        if differ:
            raise CheckpointError(
                "the checkpoint was trained on other data: "
                + "; ".join(differ)
                + ". Resume with the data settings it was trained with, or start a new run"
            )

    @classmethod
    def restore_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        # The weights come from the checkpoint: no download, no local file needed.
        return {**hparams, "net": {**hparams["net"], "weights": None, "weights_path": None}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.net is None:  # load_from_checkpoint: the weights come from the checkpoint
            self.config = dataclasses.replace(self.config, weights=None, weights_path=None)
        super().on_load_checkpoint(checkpoint)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        assert self.net is not None
        h = self.hparams
        groups = [{"params": list(self.net.head.parameters()), "lr": h.optimizer["lr"]}]
        if not self.config.freeze:
            groups.insert(0, {"params": list(self.net.body.parameters()), "lr": h.backbone_lr})
        return build(h.optimizer, groups)

    # -- steps ----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        assert self.net is not None
        if batch["y"].numel() == 0:  # every image of the batch was unreadable
            return None
        pred = self.net(batch["x"])
        target = self.class_vectors[batch["y"]]
        loss = devise_loss(pred, target, self.hparams.loss)
        size = batch["y"].numel()
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        cos = F.cosine_similarity(pred.detach(), target, dim=1).mean()
        self.log("train/cos", cos, on_step=False, on_epoch=True, batch_size=size)
        skipped = float(batch.get("skipped", 0))
        if skipped:
            self.log("train/skipped_images", skipped, on_step=False, on_epoch=True, reduce_fx="sum")
        return loss

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        assert self.net is not None
        if batch["y"].numel() == 0:
            return
        stage = EVAL_STAGES[dataloader_idx]
        pred = self.net(batch["x"])
        y = batch["y"]
        self.losses[stage].update(devise_loss(pred, self.class_vectors[y], self.hparams.loss))
        self.cosines[stage].update(F.cosine_similarity(pred, self.class_vectors[y], dim=1))
        scores = F.normalize(pred, dim=1) @ self.unit_vectors.T  # (batch, n_classes)
        candidates = self.seen_idx if stage == "val" else self.unseen_idx
        # Each true class's position among the candidates (every true class is a candidate).
        lookup = torch.full((scores.size(1),), -1, dtype=torch.long, device=y.device)
        lookup[candidates] = torch.arange(len(candidates), device=y.device)
        self.hits[stage].update(scores[:, candidates], lookup[y])
        if stage == "zeroshot":
            self.hits["zeroshot_gen"].update(scores, y)
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self._keep_for_grid(pred, y, batch["index"], "valid" if stage == "val" else stage)

    def _keep_for_grid(
        self, pred: torch.Tensor, y: torch.Tensor, index: torch.Tensor, split: str
    ) -> None:
        kept = sum(len(p) for p, _, _ in self._shown)
        if kept >= 2000 or self.hparams.n_grid_queries == 0:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "split_paths"):
            return
        paths = datamodule.split_paths(split)
        self._shown.append(
            (F.normalize(pred.detach(), dim=1).cpu(), y.cpu(), [paths[i] for i in index.tolist()])
        )

    def on_validation_epoch_end(self) -> None:
        n_seen, n_unseen = len(self.seen_idx), len(self.unseen_idx)
        for stage in EVAL_STAGES:
            if stage == "zeroshot" and n_unseen == 0:
                continue
            # torchmetrics has already reduced over ranks; sync_dist only silences Lightning.
            loss = self.losses[stage].compute()
            self.log(f"{stage}/loss", loss, prog_bar=stage == "val", sync_dist=True)
            self.log(f"{stage}/cos", self.cosines[stage].compute(), sync_dist=True)
            self._log_hits(stage, self.hits[stage], n_seen if stage == "val" else n_unseen)
            if stage == "zeroshot":
                self._log_hits("zeroshot", self.hits["zeroshot_gen"], n_seen + n_unseen, "gen_")
        for metric in [*self.losses.values(), *self.cosines.values(), *self.hits.values()]:
            metric.reset()
        if self._shown and self.trainer.is_global_zero:
            log_figure(self.trainer, "val/search", search_grid(self._grid_rows()), self.global_step)
        self._shown = []

    def _log_hits(self, stage: str, metric: HitAtK, n_candidates: int, prefix: str = "") -> None:
        values = metric.compute()
        for k, value in zip(metric.ks, values, strict=True):
            if k < n_candidates:
                shown = k == 1 and stage == "val"
                self.log(f"{stage}/{prefix}hit_at_{k}", value, prog_bar=shown, sync_dist=True)

    def _grid_rows(self) -> list[tuple[str, list[Cell]]]:
        assert self.devise is not None
        preds = torch.cat([p for p, _, _ in self._shown])
        labels = torch.cat([y for _, y, _ in self._shown])
        paths = [p for _, _, ps in self._shown for p in ps]
        present = labels.unique().tolist()
        unseen = set(self.unseen_idx.tolist())
        queries = sorted(present, key=lambda c: (c not in unseen, c))[: self.hparams.n_grid_queries]
        names = self.devise["class_names"]
        rows = []
        for c in queries:
            scores = preds @ self.unit_vectors[c].cpu()
            top = scores.topk(min(self.hparams.n_grid_results, len(scores))).indices.tolist()
            cells: list[Cell] = [
                (paths[i], names[int(labels[i])].split(",")[0], int(labels[i]) == c) for i in top
            ]
            title = names[c].split(",")[0] + (" (held out)" if c in unseen else "")
            rows.append((title, cells))
        return rows

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(batch, 3, H, W) normalised images -> (batch, dim) unit vectors in word space."""
        assert self.net is not None
        return F.normalize(self.net(images), dim=1)
