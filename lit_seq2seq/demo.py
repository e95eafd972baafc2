"""The demo page's Translate tab (``lit-demo --translator CKPT``): French lines in, English lines
out, each line's n-best list with scores, the attention heatmap of the line the user picks (the
CLI's ``--attention-png`` figure), example questions, and the checkpoint's facts.

``TranslateDemo`` holds the logic in plain Python (the model loaded once, the input limits, the
messages), so it is tested without a server; ``TranslateDemo.tab`` lays it out with Gradio,
imported there only, so the package needs Gradio only for the page (``pip install ".[demo]"``).

Input goes through the translate CLI's own checks (``input_lines.read_line``: UTF-8, at most
``tokenizer.MAX_CHARS`` characters a line; the tokenizer drops invisible and control
characters); the page adds a limit on lines per request (``max_lines``) and on the beam size
(``max_beam``), since one request must not hold the server for minutes. A request with no line
to translate is refused with the reason (``InputError``, shown as the page's error message); a
line with a problem gets an empty output line and a note, and the other lines are translated.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_common.errors import InputError
from lit_common.ranges import Int, whole
from lit_common.text import clean
from lit_seq2seq.input_lines import read_line
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.plots import attention_figure
from lit_seq2seq.tokenizer import normalize
from lit_seq2seq.translate import BEAM
from lit_seq2seq.translator import Translation, Translator

# Questions of the kind the Tatoeba question model learned (not from its validation or test
# split: typed for the page), one click each.
EXAMPLES = (
    "où est la gare ?",
    "pourquoi le médecin est-il ici ?",
    "qu'est-ce que tu veux manger ce soir ?",
    "combien de livres as-tu lus cette année ?",
    "qui a écrit cette lettre ?",
)
MAX_LINES = Int(1, 10_000)  # the --max-lines flag's range
_LINE_END = re.compile(r"\r\n|\r|\n")  # the CLI's line endings (lit_common.text.split_lines)
_DRAW = threading.Lock()  # matplotlib's pyplot is not thread-safe; the server runs threads


@dataclass
class Translated:
    """One request's answer: the English lines (one per input line, "" where not translated),
    the n-best rows (line, rank, text, score, log-probability, finished) when beam > 1, and notes
    on lines that were not translated as typed."""

    english: str
    nbest: list[list[Any]]
    notes: list[str]
    lines: int


class TranslateDemo:
    """A translation checkpoint loaded once, answering the page's requests.

    Args:
        ckpt: a checkpoint written by ``python train.py model=seq2seq``.
        max_lines: most lines one request may translate.
        max_beam: largest beam size a request may ask for.
        device: where the network runs.
    """

    def __init__(
        self, ckpt: str | Path, max_lines: int = 100, max_beam: int = 10, device: str = "cpu"
    ) -> None:
        self.max_lines = MAX_LINES.check("max_lines", max_lines)
        self.max_beam = BEAM.check("max_beam", max_beam)
        self.beams = Int(1, self.max_beam)
        self.ckpt = Path(ckpt)
        self.module = Seq2SeqModule.from_checkpoint(self.ckpt)
        self.translator = Translator(self.module, device=device, n_best=True)

    def lines(self, text: str) -> list[str]:
        """``text``'s lines (a final line ending ends the last line, it does not add one).

        Raises:
            InputError: no text, or more than ``max_lines`` lines.
        """
        if not isinstance(text, str) or not text.strip():
            raise InputError("no text: type one French sentence per line")
        lines = _LINE_END.split(text.removesuffix("\n").removesuffix("\r"))
        if len(lines) > self.max_lines:
            raise InputError(
                f"{len(lines):,} lines; this page translates at most {self.max_lines:,} per "
                "request (lit-demo --max-lines); the command line, lit-translate, has no limit"
            )
        return lines

    def translate(self, text: str, beam: int = 1) -> Translated:
        """Translate every line of ``text`` with beam size ``beam`` (1: greedy).

        Raises:
            InputError: no text, too many lines, a beam size out of range, or no line that can
                be translated (the reasons of the first few).
        """
        beam = self.beams.check("beam", whole(beam))
        lines = self.lines(text)
        checked = [read_line(i, line) for i, line in enumerate(lines, 1)]
        notes = [f"line {c.number}: {c.problem}; not translated" for c in checked if c.problem]
        good = [c for c in checked if c.problem is None]
        if not any(normalize(c.text) for c in good):
            more = f"; and {len(notes) - 3} more" if len(notes) > 3 else ""
            empty = "no words to translate: type one French sentence per line"
            raise InputError("; ".join(notes[:3]) + more if notes else empty)
        results = iter(self.translator([c.text for c in good], beam=beam))
        english, nbest = [], []
        for c in checked:
            if c.problem is not None:
                english.append("")
                continue
            result = next(results)
            english.append(result.text)
            notes += _line_notes(c.number, c.text, result)
            for rank, alt in enumerate(result.alternatives, 1):
                nbest.append(
                    [c.number, rank, alt.text, round(alt.score, 3), round(alt.log_prob, 3),
                     alt.finished]
                )  # fmt: skip
        return Translated("\n".join(english), nbest, notes, len(lines))

    def heatmap(self, text: str, beam: int, line: int) -> Any:
        """The attention heatmap (a PIL image) of line ``line`` (1-based) of ``text``, as the
        translate CLI draws it; None for an empty line or a model without attention."""
        lines = self.lines(text)
        line = Int(1, len(lines)).check("line", whole(line))
        checked = read_line(line, lines[line - 1])
        if checked.problem is not None:
            raise InputError(f"line {line}: {checked.problem}")
        beam = self.beams.check("beam", whole(beam))
        result = self.translator([checked.text], beam=beam)[0]
        if result.attention is None:
            return None
        words = [*result.tokens, "_eos_"][: result.attention.size(0)]
        return _png(result.source, words, result.attention, f"line {line}")

    def facts(self) -> str:
        """The checkpoint's facts as Markdown: file, data, vocabularies, its best scores."""
        info, facts = self.module.translation or {}, dict(self.module.facts)
        rows = [f"**checkpoint** `{self.ckpt.name}`"]
        rows += [f"**{group}** {choice}" for group, choice in facts.get("config", {}).items()]
        rows.append(
            f"**vocabulary** {len(info.get('src_vocab', [])):,} {info.get('src_lang', '?')} / "
            f"{len(info.get('tgt_vocab', [])):,} {info.get('tgt_lang', '?')} words"
            + (" (lowercased)" if info.get("lowercase") else "")
        )
        for metric, score in facts.get("best", {}).items():
            rows.append(f"**best {metric}** {score:.2f}")
        if "epoch" in facts:
            step = facts.get("global_step", "?")
            rows.append(f"**saved at** epoch {facts['epoch']}, step {step}")
        if "train_seconds" in facts:
            rows.append(f"**trained for** {facts['train_seconds'] / 60:.1f} minutes (when saved)")
        return " · ".join(rows)

    def tab(self, concurrency_id: str | None = None) -> None:
        """The Translate tab's components and events, inside the caller's ``gr.Blocks``. API
        names: ``/translate`` (text, beam -> English, line choice, n-best, notes) and
        ``/heatmap`` (text, beam, line -> image). ``concurrency_id``: the queue's group whose
        limit these events share (the app puts every model's events in one: they share the
        cores)."""
        import gradio as gr

        gr.Markdown(self.facts())
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(
                    label="French (one sentence per line)", lines=6, elem_id="fr-text"
                )
                beam = gr.Slider(
                    1, self.max_beam, value=1, step=1, label="beam size (1: greedy)", elem_id="beam"
                )
                button = gr.Button("Translate", variant="primary", elem_id="translate-button")
                gr.Examples([[e] for e in EXAMPLES], inputs=[text], label="examples")
            with gr.Column():
                english = gr.Textbox(label="English", lines=6, elem_id="en-text")
                notes = gr.Markdown(elem_id="translate-notes")
        pick = gr.Dropdown(choices=[], label="attention of line", elem_id="pick-line")
        image = gr.Image(label="attention", type="pil", elem_id="heatmap", interactive=False)
        nbest = gr.Dataframe(
            headers=["line", "rank", "English", "score", "log-prob", "finished"],
            label="n-best (beam > 1; score: log-prob over the length penalty)",
            interactive=False,
            elem_id="nbest",
        )

        def on_translate(text: str, beam: float) -> tuple[Any, ...]:
            try:
                done = self.translate(text, beam)
            except InputError as err:
                raise gr.Error(str(err)) from None
            choices = [(f"line {i}", i) for i in range(1, done.lines + 1)]
            return (
                done.english,
                gr.Dropdown(choices=choices, value=1),
                done.nbest,
                "\n".join(f"- {n}" for n in done.notes),
            )

        def on_heatmap(text: str, beam: float, line: int | None) -> Any:
            if not line or not (text or "").strip():
                return None
            try:
                return self.heatmap(text, beam, line)
            except InputError as err:
                raise gr.Error(str(err)) from None

        # preprocess=False: the inputs reach the handlers as sent, so out-of-range values get
        # this module's messages (Gradio's own checks would answer first, in other words).
        raw = {"preprocess": False, "concurrency_id": concurrency_id}
        event = button.click(
            on_translate, [text, beam], [english, pick, nbest, notes], api_name="translate", **raw
        )
        event.success(on_heatmap, [text, beam, pick], image, api_visibility="private", **raw)
        pick.input(on_heatmap, [text, beam, pick], image, api_name="heatmap", **raw)


def _line_notes(number: int, text: str, result: Translation) -> list[str]:
    """What the page says about a translated line: characters dropped, unknown words."""
    notes: list[str] = []
    if not text.strip():
        return notes  # a blank line is left blank, as the CLI does
    if clean(text) != text:
        notes.append(f"line {number}: invisible or control characters dropped")
    known = len(result.source) - 1 - result.unknown
    if result.source[:-1] and known == 0:
        notes.append(f"line {number}: none of its words is in the model's French vocabulary")
    elif not result.source[:-1]:
        notes.append(f"line {number}: no words; left empty")
    return notes


def _png(source: list[str], words: list[str], weights: Any, title: str) -> Any:
    """The heatmap figure as a PIL image (rendered under a lock: pyplot is global state)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    with _DRAW:
        fig = attention_figure([(source, words, weights)], title)
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=90)  # type: ignore[attr-defined]
        finally:
            plt.close(fig)  # type: ignore[arg-type]
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")
