"""Draw the README's per-stage BLEU figure from a results file (no training).

``python bench/plot_stages.py [--results bench/results/tatoeba_stages.json] [--out
bench/figures/stage_bleu.png]``: test BLEU (greedy, beam 5 as a tick) of the lesson's five stages
and of the same stages on the tuned recipe, with Joey NMT's score as a line. The results file holds
the figures of the README's table, each from one ``bench/seq2seq_quality.py`` run; after new runs,
edit it and redraw. Prints one JSON line: the figure's path and the best stage of each recipe.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def draw(results: dict[str, Any], out: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stages = results["stages"]
    x = np.arange(len(stages))
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for offset, (key, colour) in zip((-0.2, 0.2), (("lesson", "#9aa5b1"), ("tuned", "#2f6db5")),
                                     strict=True):  # fmt: skip
        greedy, beam = results[key]["test_bleu"], results[key]["test_bleu_beam"]
        bars = ax.bar(x + offset, greedy, 0.38, color=colour, label=f"{key} recipe (greedy)")
        ax.scatter(x + offset, beam, marker="_", s=260, color="black", zorder=3,
                   label="beam 5" if key == "tuned" else None)  # fmt: skip
        ax.bar_label(bars, fmt="%.1f", fontsize=7, label_type="center", color="white")
    joey = results["joey_nmt"]
    ax.axhline(joey["test_bleu"], color="#c0392b", linestyle="--", linewidth=1)
    ax.text(-0.45, joey["test_bleu"] - 2.6, f"{joey['label']}: {joey['test_bleu']}", fontsize=7,
            color="#c0392b")  # fmt: skip
    ax.set_xticks(x, stages, fontsize=8)
    ax.set_ylabel("test BLEU", fontsize=9)
    ax.set_ylim(0, max(results["tuned"]["test_bleu_beam"]) + 8)
    ax.set_title("French -> English questions (Tatoeba), one lesson stage at a time", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", ncol=3, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    best = {
        k: max(zip(results[k]["test_bleu"], results[k]["experiments"], strict=True))
        for k in ("lesson", "tuned")
    }
    return {
        "figure": str(out),
        "best": {k: {"experiment": e, "test_bleu": b} for k, (b, e) in best.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results" / "tatoeba_stages.json")
    parser.add_argument("--out", type=Path, default=HERE / "figures" / "stage_bleu.png")
    args = parser.parse_args()
    print(json.dumps(draw(json.loads(args.results.read_text()), args.out)))


if __name__ == "__main__":
    main()
