"""bf16 mixed precision where the hardware computes bf16, full precision elsewhere.

A config asks for it with ``trainer.precision: ${fast_precision:${trainer.accelerator}}`` (the
resolver is registered by ``lit_common.run``). Why it is chosen per machine instead of fixed:
autocast to bf16 roughly halves the time of the matrix products that dominate an RNN translator's
step, and on this project's 2-core AVX512-BF16 CPU the tuned translator trained about 20% more
tokens per second with the same BLEU (README, "Results on the Tatoeba questions"). But where the
hardware has no bf16 arithmetic (x86 CPUs without AVX512-BF16 or AMX-BF16, NVIDIA GPUs before
Ampere, Apple MPS) the same setting is emulated and slower than fp32, so it would be a bad default
there. The weights, the optimizer state and the loss stay in fp32 either way (Lightning's
``bf16-mixed`` autocasts the forward pass only), so checkpoints do not depend on the choice.
"""

from __future__ import annotations

from typing import Any

import torch

FULL = "32-true"
BF16 = "bf16-mixed"


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:  # older PyTorch cannot tell: assume not
        return False
    found = capabilities()
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


def cuda_has_bf16() -> bool:
    """Whether the current CUDA device has native bf16 arithmetic (compute capability 8+)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def fast_precision(accelerator: Any = "auto") -> str:
    """``"bf16-mixed"`` when the device that Lightning's ``accelerator`` picks computes bf16
    natively, else ``"32-true"``.

    ``auto`` follows Lightning's order (CUDA, then MPS, then CPU); ``gpu``/``cuda`` mean CUDA,
    ``cpu`` the CPU; anything else (``mps``, ``tpu``, an accelerator object) gets full precision.
    """
    name = str(accelerator).lower()
    if name in ("gpu", "cuda") or (name == "auto" and torch.cuda.is_available()):
        return BF16 if cuda_has_bf16() else FULL
    if name == "cpu" or (name == "auto" and not _mps_available()):
        return BF16 if cpu_has_bf16() else FULL
    return FULL
