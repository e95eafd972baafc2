"""Plot the one-cycle and teacher-forcing schedules the callbacks apply.

``python -m callbacks.plot --out callbacks/schedules.png`` draws, per optimizer step, the learning
rate and momentum of the default one-cycle (torch's two cosine phases) and of the lessons' three
linear phases, and the three teacher-forcing shapes. The curves come from the same functions the
callbacks call.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NoReturn

from callbacks.schedules import decay, one_cycle

ONE_CYCLE_SHAPES = {
    "default: 2 cosine phases, pct_start=0.3": {},
    "lesson: three_phase, pct_start=0.45, linear": {
        "three_phase": True,
        "pct_start": 0.45,
        "anneal_strategy": "linear",
    },
}
TEACHER_FORCING_SHAPES = {
    "linear 1 -> 0": {"shape": "linear", "start": 1.0, "end": 0.0},
    "cosine 1 -> 0": {"shape": "cosine", "start": 1.0, "end": 0.0},
    "exponential 1 -> 0.01": {"shape": "exponential", "start": 1.0, "end": 0.01},
}


def plot_schedules(out: Path, total_steps: int = 1200, max_lr: float = 3e-3) -> Path:
    """Write a 3-panel PNG (LR, momentum, pr_force) for a run of ``total_steps`` optimizer steps.

    Teacher forcing decays over the first 10/12 of the run, as in the lesson's 10 of 12 epochs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = range(total_steps)
    fig, (ax_lr, ax_mom, ax_tf) = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for label, kwargs in ONE_CYCLE_SHAPES.items():
        values = [
            one_cycle(s, max_lr=max_lr, total_steps=total_steps, **kwargs)  # type: ignore[arg-type]
            for s in steps
        ]
        ax_lr.plot(steps, [lr for lr, _ in values], label=label)
        ax_mom.plot(steps, [mom for _, mom in values], label=label)
    decay_steps = total_steps * 10 // 12
    for label, kwargs in TEACHER_FORCING_SHAPES.items():
        ax_tf.plot(steps, [decay(s, total_steps=decay_steps, **kwargs) for s in steps], label=label)
    titles = [
        (ax_lr, f"OneCycleScheduler: learning rate (max_lr={max_lr:g})", "lr"),
        (ax_mom, "OneCycleScheduler: momentum / Adam beta1", "momentum"),
        (ax_tf, "TeacherForcingScheduler: pr_force", "pr_force"),
    ]
    for ax, title, ylabel in titles:
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _picture(text: str) -> Path:
    path = Path(text)
    if path.is_dir() or path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise argparse.ArgumentTypeError(
            f"{text}: expected a file name ending in .png, .pdf or .svg"
        )
    return path


def _steps(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000_000:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer in [1, 10000000]")
    return int(text)


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number > 0")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=_picture, default=Path("schedules.png"))
    parser.add_argument("--total-steps", type=_steps, default=1200)
    parser.add_argument("--max-lr", type=_learning_rate, default=3e-3)
    args = parser.parse_args(argv)
    print(plot_schedules(args.out, args.total_steps, args.max_lr))


if __name__ == "__main__":
    main()
