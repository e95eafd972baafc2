"""A tiny third model built from the shared parts alone (``lit_common`` and ``callbacks``), to
prove that adding a model takes one package plus one YAML per config group (see README "Adding a
model" and ``test_third_model.py``).

The task: Gaussian feature vectors whose label is the index of the largest of their first
``n_classes`` features, learned by a small MLP. The datamodule caches its arrays the way both real
models do (content-hashed folder, atomic publish, NumPy without pickle), batches through the
resumable loader, and tells the model its sizes (``model_info``); the module is built from them
and restores from its checkpoint alone (``lit_common.sizes``), takes its optimizer as a Hydra
``_partial_`` config (``lit_common.optim``) and logs a table and a figure
(``lit_common.reporting``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from lit_common.cache import content_hash, load_array, staged
from lit_common.errors import check_choice
from lit_common.optim import build, partial_config
from lit_common.reporting import log_figure, log_table
from lit_common.resumable import ResumableDataLoader, trainer_batches_done
from lit_common.sizes import BuiltFromData


class ArgmaxData(pl.LightningDataModule):
    """``n`` Gaussian vectors of ``n_features``; the label is the argmax of the first
    ``n_classes`` features. Batches: ``x`` (B, n_features) float, ``y`` (B,) long."""

    def __init__(
        self, cache_dir: str, n: int = 512, n_features: int = 8, n_classes: int = 3, seed: int = 0
    ) -> None:
        super().__init__()
        self.cache_dir, self.n, self.seed = Path(cache_dir), n, seed
        self.n_features, self.n_classes = n_features, n_classes
        self.arrays: dict[str, np.ndarray] = {}

    @property
    def cache_path(self) -> Path:
        key = content_hash([self.n, self.n_features, self.n_classes, self.seed])
        return self.cache_dir / f"argmax-{key}"

    def prepare_data(self) -> None:
        if (self.cache_path / "y.npy").is_file():
            return
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.n, self.n_features)).astype(np.float32)
        with staged(self.cache_path) as tmp:
            np.save(tmp / "x.npy", x)
            np.save(tmp / "y.npy", x[:, : self.n_classes].argmax(1))

    def setup(self, stage: str | None = None) -> None:
        self.arrays = {k: load_array(self.cache_path / f"{k}.npy") for k in ("x", "y")}

    def model_info(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "classes": [f"c{i}" for i in range(self.n_classes)]}

    def _dataset(self, part: slice) -> list[tuple[torch.Tensor, int]]:
        x, y = self.arrays["x"][part], self.arrays["y"][part]
        return [(torch.from_numpy(x[i]), int(y[i])) for i in range(len(y))]

    def train_dataloader(self) -> DataLoader:
        data = self._dataset(slice(0, self.n * 3 // 4))
        generator = torch.Generator().manual_seed(self.seed)
        batches = BatchSampler(RandomSampler(data, generator=generator), 32, drop_last=False)
        return ResumableDataLoader(data, batches, trainer_batches_done(self.trainer))

    def val_dataloader(self) -> DataLoader:
        data = self._dataset(slice(self.n * 3 // 4, None))
        return DataLoader(data, batch_sampler=BatchSampler(SequentialSampler(data), 64, False))


class ArgmaxClassifier(BuiltFromData, pl.LightningModule):
    """An MLP over ``model_info()["n_features"]`` inputs onto its classes."""

    info_key = "argmax"
    info_keys = ("n_features", "classes")
    info_what = "argmax classifier checkpoint (no class list in it)"
    train_command = "python train.py model=argmax"

    def __init__(
        self,
        hidden: int = 32,
        activation: str = "relu",
        optimizer: dict[str, Any] | None = None,
        argmax: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ("relu", "tanh"))
        optimizer = partial_config(optimizer or {"_target_": "torch.optim.Adam", "lr": 1e-2}, "opt")
        self.save_hyperparameters(
            {"hidden": hidden, "activation": activation, "optimizer": optimizer}
        )
        self.net: nn.Module | None = None
        self.info: dict[str, Any] | None = None
        if argmax is not None:
            self.build_net(argmax)

    def build_net(self, info: dict[str, Any]) -> None:
        self.info = info
        act = nn.ReLU() if self.hparams.activation == "relu" else nn.Tanh()
        hidden = self.hparams.hidden
        self.net = nn.Sequential(
            nn.Linear(info["n_features"], hidden), act, nn.Linear(hidden, len(info["classes"]))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.net is not None
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self(batch[0]), batch[1])
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val/loss", F.cross_entropy(logits, y))
        self.log("val/acc", (logits.argmax(1) == y).float().mean())
        if batch_idx == 0 and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            assert self.info is not None
            names = self.info["classes"]
            pairs = zip(y[:4], logits.argmax(1)[:4], strict=True)
            rows = [(names[int(t)], names[int(p)]) for t, p in pairs]
            log_table(self.trainer, "val/samples", ["label", "prediction"], rows, self.global_step)
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            figure, ax = plt.subplots(figsize=(2, 2))
            ax.imshow(logits[:8].softmax(1).detach().cpu().numpy())
            log_figure(self.trainer, "val/probabilities", figure, self.global_step)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build(self.hparams.optimizer, self.parameters())
