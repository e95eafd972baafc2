"""Reusable Lightning callbacks: one-cycle LR with inverse momentum, and teacher-forcing decay.

Copy this folder into any Lightning 2.x project (``pytorch_lightning`` or ``lightning.pytorch``);
it imports nothing else from this repository.
"""

from callbacks.one_cycle import OneCycleScheduler
from callbacks.teacher_forcing import TeacherForcingScheduler

__all__ = ["OneCycleScheduler", "TeacherForcingScheduler"]
