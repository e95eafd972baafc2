"""Reusable Lightning callbacks: one-cycle LR with inverse momentum, teacher-forcing decay, and the
random state that makes a resumed run continue exactly.

Copy this folder into any Lightning 2.x project (``pytorch_lightning`` or ``lightning.pytorch``);
it imports nothing else from this repository.
"""

from callbacks.errors import CallbackConfigError, CallbackSetupError, MissingAttributeError
from callbacks.finite_loss import NonFiniteLossError, StopOnNonFiniteLoss
from callbacks.interrupt_checkpoint import InterruptCheckpoint
from callbacks.one_cycle import OneCycleScheduler
from callbacks.random_state import RandomStateCheckpoint
from callbacks.teacher_forcing import TeacherForcingScheduler

__all__ = [
    "CallbackConfigError",
    "CallbackSetupError",
    "InterruptCheckpoint",
    "MissingAttributeError",
    "NonFiniteLossError",
    "OneCycleScheduler",
    "RandomStateCheckpoint",
    "StopOnNonFiniteLoss",
    "TeacherForcingScheduler",
]
