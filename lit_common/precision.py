"""bf16 mixed precision where the hardware computes bf16, full precision elsewhere.

A config asks for it with ``trainer.precision: ${fast_precision:${trainer.accelerator}}`` (the
resolver is registered by ``lit_common.config``). Why it is chosen per machine instead of fixed:
autocast to bf16 roughly halves the time of the matrix products that dominate an RNN translator's
step, and on this project's 2-core AVX512-BF16 CPU the tuned translator trained 20 to 28% more
tokens per second with the same BLEU (README, "Results on the Tatoeba questions"). But where the
hardware has no bf16 arithmetic (x86 CPUs without AVX512-BF16 or AMX-BF16, NVIDIA GPUs before
Ampere) the same setting is emulated and slower than fp32, so it would be a bad default there.
Lightning's ``bf16-mixed`` autocasts the forward passes only (the translator turns it off again
for validation and test, which decode in fp32 like its CLIs): the weights and optimizer state stay
fp32, the loss is computed in fp32 (``cross_entropy`` is one of autocast's fp32 operations), and
checkpoints do not depend on the choice.

Devices that are not probed get full precision: ARM CPUs, Apple MPS, TPUs, AMD ROCm GPUs; set
``trainer.precision=bf16-mixed`` there yourself if it pays. The choice is made where the config is
resolved, on the machine that runs it: a run resumed on other hardware may train on in the other
precision (the weights are fp32 either way).
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator

FULL = "32-true"
BF16 = "bf16-mixed"


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:  # older PyTorch cannot tell: assume not
        return False
    found = capabilities()
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


def _nvml_compute_major() -> int | None:
    """The lowest compute-capability major of the NVIDIA GPUs, read through NVML when ``pynvml``
    is installed; None when it is not or NVML fails. NVML does not initialise CUDA in this
    process, so ``ddp_fork`` and notebook launches still work after the check. NVML sees every
    GPU of the machine, also those ``CUDA_VISIBLE_DEVICES`` hides: one older GPU anywhere means
    full precision (slower, never wrong)."""
    try:  # an ImportError (no pynvml) or any NVML failure means "ask CUDA instead"
        import pynvml

        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
            return min(
                pynvml.nvmlDeviceGetCudaComputeCapability(pynvml.nvmlDeviceGetHandleByIndex(i))[0]
                for i in range(count)
            )
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def cuda_has_bf16() -> bool:
    """Whether the NVIDIA GPUs have native bf16 arithmetic (compute capability 8+, Ampere on).

    Without ``pynvml`` the capability comes from ``torch.cuda.get_device_capability``, which
    initialises CUDA in this process: Lightning then refuses ``strategy=ddp_fork`` / notebook
    launches, so set ``trainer.precision`` explicitly there (or install ``nvidia-ml-py``)."""
    if not _cuda_available() or getattr(torch.version, "hip", None):
        return False  # ROCm is not probed: full precision
    major = _nvml_compute_major()
    if major is None:
        try:
            major = torch.cuda.get_device_capability()[0]
        except Exception:
            return False
    return major >= 8


# Lightning's own availability checks, so that `auto` means here what it means to the Trainer
# (its CUDA check counts devices through NVML and leaves CUDA uninitialised).
def _cuda_available() -> bool:
    return bool(CUDAAccelerator.is_available())


def _mps_available() -> bool:
    return bool(MPSAccelerator.is_available())


def _xla_available() -> bool:
    return bool(XLAAccelerator.is_available())


def fast_precision(accelerator: Any = "auto") -> str:
    """``"bf16-mixed"`` when the device that Lightning's ``accelerator`` picks computes bf16
    natively, else ``"32-true"``.

    ``auto`` (or null) follows Lightning's order: a TPU, then MPS, then CUDA, then the CPU;
    ``gpu``/``cuda`` mean CUDA, ``cpu`` the CPU; anything else (``mps``, ``tpu``, an accelerator
    object) gets full precision.
    """
    name = "auto" if accelerator is None else str(accelerator).lower()
    if name == "auto":
        if _xla_available() or _mps_available():
            return FULL
        name = "cuda" if _cuda_available() else "cpu"
    if name in ("gpu", "cuda"):
        return BF16 if cuda_has_bf16() else FULL
    if name == "cpu":
        return BF16 if cpu_has_bf16() else FULL
    return FULL
