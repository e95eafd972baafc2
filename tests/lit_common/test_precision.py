"""bf16 mixed precision only where the hardware computes bf16 (lit_common/precision.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lit_common import precision
from lit_common.precision import BF16, FULL, cpu_has_bf16, fast_precision
from tests.conftest import compose_train


def _machine(
    monkeypatch: pytest.MonkeyPatch, cpu: dict[str, bool], cuda: bool, cuda_bf16: bool, mps: bool
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(cpu))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: cuda_bf16)
    monkeypatch.setattr(precision, "_mps_available", lambda: mps)


@pytest.mark.parametrize(
    ("cpu", "cuda", "cuda_bf16", "mps", "accelerator", "expected"),
    [
        ({"avx512_bf16": True}, False, False, False, "auto", BF16),
        ({"amx_bf16": True}, False, False, False, "cpu", BF16),
        ({"avx512_bf16": False, "avx2": True}, False, False, False, "auto", FULL),
        ({}, False, False, False, "cpu", FULL),
        # a GPU decides for `auto`, whatever the CPU has
        ({"avx512_bf16": True}, True, False, False, "auto", FULL),  # e.g. a V100 or T4
        ({}, True, True, False, "auto", BF16),  # Ampere or newer
        ({}, True, True, False, "gpu", BF16),
        ({"avx512_bf16": True}, True, False, False, "cuda", FULL),
        # the CPU of a GPU machine when asked for
        ({"avx512_bf16": True}, True, False, False, "cpu", BF16),
        # Apple: MPS is picked before the CPU, and gets full precision
        ({"avx512_bf16": True}, False, False, True, "auto", FULL),
        ({}, False, False, True, "mps", FULL),
        ({"avx512_bf16": True}, False, False, False, "tpu", FULL),
    ],
)
def test_bf16_only_where_the_device_computes_it(
    monkeypatch: pytest.MonkeyPatch,
    cpu: dict[str, bool],
    cuda: bool,
    cuda_bf16: bool,
    mps: bool,
    accelerator: str,
    expected: str,
) -> None:
    _machine(monkeypatch, cpu, cuda, cuda_bf16, mps)
    assert fast_precision(accelerator) == expected
    assert fast_precision(accelerator.upper()) == expected


def test_older_torch_without_capabilities_gets_full_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not cpu_has_bf16()
    assert fast_precision("cpu") == FULL


def test_the_tuned_experiments_resolve_it_and_the_lesson_stays_fp32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for has, expected in ((True, BF16), (False, FULL)):
        _machine(monkeypatch, {"avx512_bf16": has}, False, False, False)
        for name in ("seq2seq_tuned", "seq2seq_tuned_attn"):
            cfg = compose_train(tmp_path, f"experiment={name}", "data=tatoeba_questions")
            assert cfg.trainer.precision == expected, name
        forced = compose_train(tmp_path, "experiment=seq2seq_tuned", "trainer.precision=32-true")
        assert forced.trainer.precision == FULL
    # the resolver follows trainer.accelerator, also when it is changed on the command line
    _machine(monkeypatch, {"avx512_bf16": True}, True, False, False)
    cfg = compose_train(tmp_path, "experiment=seq2seq_tuned", "trainer.accelerator=cpu")
    assert cfg.trainer.precision == BF16
    cfg = compose_train(tmp_path, "experiment=seq2seq_tuned")
    assert cfg.trainer.precision == FULL
    for name in ("seq2seq_all", "seq2seq_base"):
        cfg = compose_train(tmp_path, f"experiment={name}", "data=tatoeba_questions")
        assert cfg.trainer.precision == FULL, name
    assert compose_train(tmp_path).trainer.precision == FULL
    assert OmegaConf.is_interpolation(
        OmegaConf.load(Path(__file__).parents[2] / "configs/experiment/seq2seq_tuned.yaml").trainer,
        "precision",
    )
