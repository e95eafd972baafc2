"""Does a study's short per-trial budget rank settings as the full budget does?

Takes trials of an Optuna study (``--trials``, or by default the first trial, the four best others
and the worst completed one), trains each trial's settings at the quality bench's full budget
(``bench/seq2seq_quality.py --minutes M --experiment NAME <the trial's settings>``, one after
another), and compares the two rankings on validation BLEU. The last line is one JSON object:
``trials`` (number, settings, the study's value, the full-budget ``valid_bleu`` and
``test_bleu``), ``spearman`` (rank correlation of the study's values with the full-budget
validation BLEU) and ``same_best`` (whether both budgets put the same trial first). With
``--log FILE`` each finished run is kept there and read back by a later call (see
``seq2seq_seeds.py``), so the comparison can be run a few trials at a time.

    python bench/study_budget.py --storage sqlite:///bench/studies/seq2seq_awd.db \
        --study seq2seq_awd --minutes 15 [--trials 0 7 12 20] [--log FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from seq2seq_seeds import completed, run_seed, trial_overrides

from lit_common.errors import InputError
from lit_common.study import load


def ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (Pearson's on the ranks)."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return round(cov / var, 3) if var else float("nan")


def default_trials(study: Any) -> list[int]:
    """The first trial (the reference), the four best others and the worst: the close calls
    are where a longer budget could change the order."""
    by_number = completed(study)
    done = sorted(by_number.values(), key=lambda t: -t.value)
    first = min(by_number)
    others = [t.number for t in done if t.number != first]
    return list(dict.fromkeys([first, *others[:4], others[-1]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--minutes", type=float, default=15.0, help="the full budget")
    parser.add_argument("--experiment", default="seq2seq_tuned")
    parser.add_argument("--trials", type=int, nargs="*", help="trial numbers (default: 4 picks)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of every full run")
    parser.add_argument("--log", type=Path, help="JSON lines of finished runs, reused by key")
    args = parser.parse_args()
    try:
        study = load(args.storage, args.study)
    except InputError as err:
        raise SystemExit(f"error: {err}") from None
    numbers = args.trials or default_trials(study)
    done = completed(study)
    wrong = [n for n in numbers if n not in done]
    if wrong or len(numbers) < 2:
        raise SystemExit(
            f"error: --trials {numbers}: give 2 or more completed trials (not {wrong}); "
            f"completed: {sorted(done)}"
        )
    rows = []
    for number in numbers:
        trial = done[number]
        run = run_seed(
            args.minutes, args.experiment, args.seed, trial_overrides(trial.params), args.log
        )
        rows.append(
            {
                "trial": number,
                "params": trial.params,
                "study_value": trial.value,
                "valid_bleu": run["valid_bleu"],
                "test_bleu": run["test_bleu"],
                "epochs": run["epochs"],
                "train_tokens_per_s": run["train_tokens_per_s"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    short = [r["study_value"] for r in rows]
    full = [r["valid_bleu"] for r in rows]
    result = {
        "study": args.study,
        "minutes_budget": args.minutes,
        "trials": rows,
        "spearman": spearman(short, full),
        "same_best": short.index(max(short)) == full.index(max(full)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
