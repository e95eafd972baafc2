""" "The datamodule tells the model its sizes, the checkpoint keeps them", once for every model.

A network's shape often depends on the data: the translator's embedding tables on the vocabulary
sizes, DeViSE's head on the word-vector dimension and its metrics on the class list. The data are
only known once the datamodule has run ``setup``, so the network is built in ``configure_model``
(after ``setup``, before the optimizer), from the datamodule's ``model_info()``; that dict is
stored in every checkpoint under the model's ``info_key``, which is how ``load_from_checkpoint``,
``from_checkpoint`` and the CLIs rebuild the same network with no datamodule at all.

A model implements it by deriving from ``BuiltFromData`` (before ``LightningModule``) and
defining ``build_net(info)``; its datamodule implements ``ModelInfoSource``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from lit_common.checkpoint import CheckpointError, read_checkpoint, training_facts
from lit_common.errors import InputError

M = TypeVar("M", bound="BuiltFromData")


class DataMismatchError(InputError):
    """A datamodule that cannot tell this model what it needs (another model's data)."""


@runtime_checkable
class ModelInfoSource(Protocol):
    """A datamodule that tells its model what the data fix: sizes, vocabularies, classes. The
    dict holds plain values and tensors only (it goes into ``weights_only`` checkpoints)."""

    def model_info(self) -> dict[str, Any]: ...


class BuiltFromData:
    """Mixin for a ``LightningModule`` whose network is built from its datamodule's
    ``model_info()`` and rebuilt from the checkpoint's copy of it.

    Subclasses set ``info_key`` (the checkpoint entry, e.g. ``"translation"``), ``info_keys``
    (what ``model_info()`` must hold), ``info_what`` (how errors name a checkpoint without it)
    and ``train_command`` (what writes one), keep ``self.net = None`` and ``self.info = None``
    until built, and define ``build_net``. A module restored by ``from_checkpoint`` carries
    ``facts``: what the checkpoint says about its run (``checkpoint.training_facts``).
    """

    info_key: ClassVar[str]
    info_keys: ClassVar[tuple[str, ...]] = ()
    info_what: ClassVar[str]
    train_command: ClassVar[str]
    net: Any
    info: dict[str, Any] | None
    facts: Mapping[str, Any] = MappingProxyType({})  # set by from_checkpoint; read-only here

    def build_net(self, info: dict[str, Any]) -> None:
        """Create ``self.net`` (and any buffers) for ``info``; sets ``self.info``."""
        raise NotImplementedError

    def check_data(self, info: dict[str, Any], datamodule: Any) -> None:
        """Refuse data this model's settings cannot train on (raise an ``InputError``)."""

    def check_resume(self, saved: dict[str, Any]) -> None:
        """Refuse a checkpoint whose ``model_info`` differs from the data's in what matters."""

    def after_build(self, datamodule: Any) -> None:
        """Initialise from the data once built for training (e.g. pretrained embeddings)."""

    @classmethod
    def check_info(cls, info: Any) -> None:
        """Refuse a saved ``model_info`` that is not what ``model_info()`` writes (raise an
        ``InputError``): the keys ``info_keys`` here; subclasses add types, shapes, ranges."""
        if not isinstance(info, dict):
            raise CheckpointError(f"its {cls.info_key!r} entry is not a dict")
        missing = [key for key in cls.info_keys if key not in info]
        if missing:
            raise CheckpointError(f"its {cls.info_key!r} entry lacks {missing}")

    @classmethod
    def restore_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """Hyper-parameters as a checkpoint-only restore needs them (no downloads)."""
        return hparams

    def configure_model(self) -> None:
        if self.net is not None or getattr(self, "_trainer", None) is None:
            return  # built already, or load_from_checkpoint: on_load_checkpoint builds it
        datamodule = getattr(self.trainer, "datamodule", None)  # type: ignore[attr-defined]
        name = type(self).__name__
        if not isinstance(datamodule, ModelInfoSource):
            raise DataMismatchError(
                f"{name} builds its network from a datamodule's model_info() "
                f"(lit_common.sizes.ModelInfoSource); got {type(datamodule).__name__}: "
                "pass the model's own data config"
            )
        info = datamodule.model_info()
        missing = [key for key in self.info_keys if key not in info]
        if missing:
            raise DataMismatchError(
                f"{name} needs data whose model_info() has {list(self.info_keys)}; "
                f"{type(datamodule).__name__} lacks {missing}: pass the model's own data config"
            )
        self.check_data(info, datamodule)
        self.build_net(info)
        self.after_build(datamodule)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.info_key] = self.info

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(self.info_key)
        if saved is None:
            raise CheckpointError(f"not a {self.info_what}")
        try:
            self.check_info(saved)
        except InputError as err:
            raise CheckpointError(f"the checkpoint is damaged: {err}") from None
        if self.net is None:  # load_from_checkpoint: no datamodule, the checkpoint has the sizes
            self.build_net(saved)
        else:
            self.check_architecture(checkpoint)
            self.check_resume(saved)

    def check_architecture(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to resume weights that do not fit this network (other names or shapes), listing
        the ``model.net.*`` settings that differ; Lightning would stop on them with a traceback.
        Settings that leave the weights' shapes alone (dropout, a moved weights file, the
        optimizer) may change on resume."""
        state = checkpoint.get("state_dict")
        own = self.state_dict()  # type: ignore[attr-defined]
        if not isinstance(state, dict):
            raise CheckpointError("the checkpoint has no state_dict; damaged?")
        shapes = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
        if shapes == {k: tuple(v.shape) for k, v in own.items()}:
            return
        mine = dict(getattr(self, "hparams", {})).get("net")
        saved = checkpoint.get("hyper_parameters")
        theirs = saved.get("net") if isinstance(saved, dict) else None
        differ = []
        if isinstance(mine, dict) and isinstance(theirs, dict):
            differ = [
                f"model.net.{key} (checkpoint {theirs.get(key)!r}, config {mine.get(key)!r})"
                for key in sorted(set(mine) | set(theirs))
                if mine.get(key) != theirs.get(key)
            ]
        if not differ:
            first = next(
                k
                for k in sorted(set(shapes) | set(own))
                if shapes.get(k) != (tuple(own[k].shape) if k in own else None)
            )
            differ = [f"the weight {first} (checkpoint {shapes.get(first)}, network "
                      f"{tuple(own[first].shape) if first in own else None})"]  # fmt: skip
        raise CheckpointError(
            "the checkpoint's weights do not fit the network of this config: "
            + "; ".join(differ)
            + ". Resume with the settings it was trained with, or start a new run"
        )

    @classmethod
    def from_checkpoint(cls: type[M], path: str | Path, map_location: str = "cpu") -> M:
        """A module ready for inference, from a checkpoint alone (read with ``weights_only``).

        Raises:
            CheckpointError: an unreadable file, or one whose contents disagree with each other:
                missing entries, a damaged ``model_info``, hyper-parameters out of range or
                unknown, weights whose names or shapes do not fit the network they describe.
        """
        checkpoint = read_checkpoint(
            path, cls.info_key, cls.info_what, cls.train_command, map_location
        )
        hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
        if not isinstance(hparams, dict) or not isinstance(state, dict):
            raise CheckpointError(f"{path} lacks its hyper_parameters or state_dict; damaged?")
        try:
            cls.check_info(checkpoint[cls.info_key])
            hparams = cls.restore_hparams(dict(hparams))
            module = cls(**hparams, **{cls.info_key: checkpoint[cls.info_key]})  # type: ignore[call-arg]
        except (InputError, TypeError, KeyError, IndexError, AttributeError) as err:
            raise CheckpointError(f"{path} is damaged: {_first_line(err)}") from None
        try:
            module.load_state_dict(state)  # type: ignore[attr-defined]
        except RuntimeError as err:
            raise CheckpointError(
                f"{path}: the weights do not fit the network its hyper-parameters describe "
                f"({_first_line(err)})"
            ) from None
        module.facts = training_facts(checkpoint, path)
        return module.eval()  # type: ignore[attr-defined,no-any-return]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
