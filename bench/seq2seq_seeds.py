"""One translation recipe at the quality bench's budget with several seeds: mean and spread.

Runs ``bench/seq2seq_quality.py --minutes M --experiment NAME seed=S [overrides]`` once per seed,
one after another (never side by side: they would share the cores), and prints one JSON object
last: ``experiment``, ``overrides``, ``seeds``, ``runs`` (each run's JSON) and, for
``valid_bleu``, ``test_bleu``, ``test_bleu_beam`` and ``train_tokens_per_s``, the ``mean``,
``std`` (sample standard deviation), ``min`` and ``max`` over the seeds. Choose between recipes
on ``valid_bleu``; ``test_bleu`` is for reporting.

``--log FILE`` (JSON lines) keeps every finished run; a run whose minutes, experiment, seed and
overrides are already there is read back instead of trained again, so a comparison that takes
longer than one sitting is run in parts (the runs' ``train_tokens_per_s`` shows whether the
machine was as fast each time).

    python bench/seq2seq_seeds.py --minutes 15 --experiment seq2seq_tuned --seeds 1,2,3 \
        [--log bench/studies/seeds.jsonl] [model.net.dec_word_drop=0.1 ...]

``--trial N --storage URL --study NAME`` takes the settings of a study's trial (as
``study_budget.py`` passes them, so the two benches share runs through one ``--log``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent / "seq2seq_quality.py"
FIGURES = ("valid_bleu", "test_bleu", "test_bleu_beam", "train_tokens_per_s", "epochs")


def run_seed(
    minutes: float, experiment: str, seed: int, overrides: list[str], log: Path | None = None
) -> dict[str, Any]:
    """One quality bench run (its last line of output is its JSON), or the same run read back
    from ``log``; a new run is appended to ``log``."""
    key = {"minutes": minutes, "experiment": experiment, "seed": seed, "overrides": overrides}
    if log is not None and log.is_file():
        for number, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a run cut off while its line was written
                print(f"warning: {log} line {number} is not JSON; ignored", file=sys.stderr)
                continue
            if entry.get("key") == key:
                print(f"note: seed {seed} read back from {log}", file=sys.stderr)
                return entry["result"]
    cmd = [sys.executable, str(BENCH), "--minutes", str(minutes), "--experiment", experiment,
           f"seed={seed}", *overrides]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"error: seed {seed} failed: {last}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"key": key, "result": result}) + "\n")
    return result


def completed(study: Any) -> dict[int, Any]:
    """The study's completed trials by number (what ``--trial`` and study_budget.py accept)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return {t.number: t for t in done}


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """A trial's settings as Hydra overrides, in the trial's order (the run log's key)."""
    return [f"{key}={round(value, 10)}" for key, value in params.items()]


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), min and max, rounded."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "mean": round(statistics.mean(values), 2),
        "std": round(std, 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--experiment", default="seq2seq_tuned")
    parser.add_argument(
        "--seeds",
        type=lambda text: [int(seed) for seed in text.split(",")],
        default=[1, 2, 3],
        help="comma-separated, e.g. 1,2,3 (the Hydra overrides follow as plain arguments)",
    )
    parser.add_argument("--log", type=Path, help="JSON lines of finished runs, reused by key")
    parser.add_argument("--trial", type=int, help="use this study trial's settings")
    parser.add_argument("--storage", help="with --trial: the study's storage")
    parser.add_argument("--study", help="with --trial: the study's name")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    if args.trial is not None:
        if not (args.storage and args.study):
            parser.error("--trial needs --storage and --study")
        import optuna

        from lit_common.errors import InputError
        from lit_common.study import load

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            trial = completed(load(args.storage, args.study)).get(args.trial)
        except InputError as err:
            raise SystemExit(f"error: {err}") from None
        if trial is None:
            raise SystemExit(f"error: --trial {args.trial}: not a completed trial of {args.study}")
        args.overrides = [*trial_overrides(trial.params), *args.overrides]
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(args.minutes, args.experiment, seed, args.overrides, args.log))
        print(json.dumps({"seed": seed} | {k: runs[-1].get(k) for k in FIGURES}), flush=True)
    result: dict[str, Any] = {
        "experiment": args.experiment,
        "trial": args.trial,
        "overrides": args.overrides,
        "minutes_budget": args.minutes,
        "seeds": args.seeds,
    }
    for key in FIGURES:
        result[key] = spread([float(run[key]) for run in runs])
    result["runs"] = runs
    print(json.dumps(result))


if __name__ == "__main__":
    main()
