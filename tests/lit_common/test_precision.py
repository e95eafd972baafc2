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
    monkeypatch.setattr(precision, "_cuda_available", lambda: cuda)
    monkeypatch.setattr(
        torch.cuda, "get_device_capability", lambda: (8, 0) if cuda_bf16 else (7, 5)
    )
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(precision, "_nvml_compute_major", lambda: None)
    monkeypatch.setattr(precision, "_mps_available", lambda: mps)
    monkeypatch.setattr(precision, "_xla_available", lambda: False)


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
    if accelerator == "auto":
        assert fast_precision(None) == expected, "a null accelerator is Lightning's auto"


class _FakeNVML:
    """pynvml's calls, for GPUs of the given compute-capability majors."""

    def __init__(self, majors: list[int]) -> None:
        self.majors, self.shut = majors, False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.majors)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetCudaComputeCapability(self, i: int) -> tuple[int, int]:
        return self.majors[i], 0


@pytest.mark.parametrize(("majors", "expected"), [([8, 9], BF16), ([9, 7], FULL), ([7], FULL)])
def test_nvml_decides_without_initialising_cuda(
    monkeypatch: pytest.MonkeyPatch, majors: list[int], expected: str
) -> None:
    """With pynvml the GPUs are asked through NVML (fork-safe); every GPU must have bf16."""
    import sys

    nvml = _FakeNVML(majors)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(precision, "_cuda_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)

    def initialises_cuda() -> tuple[int, int]:
        raise AssertionError("asked CUDA although NVML answered")

    monkeypatch.setattr(torch.cuda, "get_device_capability", initialises_cuda)
    assert fast_precision("gpu") == expected
    assert nvml.shut, "NVML is shut down after the check"


def test_without_pynvml_cuda_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert precision._nvml_compute_major() is None
    monkeypatch.setattr(precision, "_cuda_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (8, 6))
    assert fast_precision("cuda") == BF16


def test_unprobed_gpus_get_full_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCm, a GPU that cannot be asked, and a TPU host are not guessed at."""
    _machine(monkeypatch, {"avx512_bf16": True}, True, True, False)
    assert fast_precision("cuda") == BF16
    monkeypatch.setattr(torch.version, "hip", "6.2")
    assert fast_precision("cuda") == FULL
    monkeypatch.setattr(torch.version, "hip", None)

    def broken() -> tuple[int, int]:
        raise RuntimeError("CUDA error: no kernel image")

    monkeypatch.setattr(torch.cuda, "get_device_capability", broken)
    assert fast_precision("cuda") == FULL
    monkeypatch.setattr(precision, "_cuda_available", lambda: False)
    monkeypatch.setattr(precision, "_xla_available", lambda: True)
    assert fast_precision("auto") == FULL
    assert fast_precision("cpu") == BF16, "the CPU when asked for, even on a TPU host"


def test_older_torch_without_capabilities_gets_full_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(precision, "_cuda_available", lambda: False)
    monkeypatch.setattr(precision, "_mps_available", lambda: False)
    monkeypatch.setattr(precision, "_xla_available", lambda: False)
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
    # `trainer.gpus=N` (the users' shortcut) sets the accelerator the resolver then follows
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for ampere, expected in ((True, BF16), (False, FULL)):
        _machine(monkeypatch, {"avx512_bf16": not ampere}, True, ampere, False)
        cfg = compose_train(tmp_path, "experiment=seq2seq_tuned", "trainer.gpus=2")
        assert (cfg.trainer.accelerator, cfg.trainer.precision) == ("gpu", expected)
    for name in ("seq2seq_all", "seq2seq_base"):
        cfg = compose_train(tmp_path, f"experiment={name}", "data=tatoeba_questions")
        assert cfg.trainer.precision == FULL, name
    assert compose_train(tmp_path).trainer.precision == FULL
    assert OmegaConf.is_interpolation(
        OmegaConf.load(Path(__file__).parents[2] / "configs/experiment/seq2seq_tuned.yaml").trainer,
        "precision",
    )
