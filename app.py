"""Serve the demo page: a Translate tab and a Search tab, for whichever checkpoints you have.

``lit-demo [--translator CKPT] [--index DIR] [--host H] [--port P]`` (or ``python app.py ...``)
loads each model once, serves the page on 127.0.0.1:7860 by default, and prints ``url: http://...``
once it answers. Either model may be left out; the page then shows only the tab it has. Each
model package provides its tab (``lit_seq2seq.demo``, ``lit_devise.demo``); this file only
composes them, so neither model imports the other and ``lit_common`` stays free of Gradio.
Needs the ``demo`` extra: ``pip install -e ".[demo]"``.

Many users: Gradio's queue runs at most ``--concurrency`` requests at once, of both tabs together
(they share the cores), first come first served, and keeps at most ``--queue`` waiting (more are
refused with "queue full" rather than waiting forever); each request's network runs on
``--threads`` torch threads, so requests side by side do not fight over the cores.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from lit_common import cli
from lit_common.errors import InputError
from lit_common.ranges import Int

PORT, CONCURRENCY, QUEUE, THREADS = Int(1, 65_535), Int(1, 64), Int(1, 10_000), Int(1, 256)
# The ranges of lit_seq2seq.demo.MAX_LINES, lit_seq2seq.translate.BEAM and lit_devise.search.K,
# which the demo classes check again; not imported, so `--help` needs neither model's extra
# (tests/test_demo.py checks that they agree).
LINES, BEAMS, KS = Int(1, 10_000), Int(1, 256), Int(1, 10_000)
MAX_UPLOAD = "20mb"  # an upload bigger than this is refused by the server before it is read


GROUP = "models"  # the queue's one concurrency group: every model event shares its limit


def build(translate: Any = None, search: Any = None, concurrency: int = 2, queue: int = 64) -> Any:
    """The page (a ``gr.Blocks``, queued) with a tab per model given."""
    import gradio as gr

    with gr.Blocks(title="lit-translate-devise", analytics_enabled=False) as page:
        gr.Markdown("# lit-translate-devise: translate French questions, search images by words")
        with gr.Tabs():
            if translate is not None:
                with gr.Tab("Translate", id="translate"):
                    translate.tab(GROUP)
            if search is not None:
                with gr.Tab("Search", id="search"):
                    search.tab(GROUP)
    # A group's limit is the lowest of its events' limits: all take the default here.
    return page.queue(default_concurrency_limit=concurrency, max_size=queue)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.ArgumentParser(description="Serve the demo page for a translator and an index.")
    parser.add_argument("--translator", help="checkpoint of `python train.py model=seq2seq`")
    parser.add_argument("--index", help="folder written by `python -m lit_devise.index`")
    parser.add_argument("--images-root", help="where the indexed images are now")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=PORT.arg(), default=7860, help=f"port; {PORT}")
    parser.add_argument(
        "--max-lines", type=LINES.arg(), default=100, help=f"most lines per request; {LINES}"
    )
    parser.add_argument("--max-beam", type=BEAMS.arg(), default=10, help=f"largest beam; {BEAMS}")
    parser.add_argument("--max-k", type=KS.arg(), default=50, help=f"most results; {KS}")
    parser.add_argument(
        "--concurrency",
        type=CONCURRENCY.arg(),
        default=2,
        help=f"requests run at once (both tabs together); {CONCURRENCY}",
    )
    parser.add_argument(
        "--queue", type=QUEUE.arg(), default=64, help=f"most requests waiting; {QUEUE}"
    )
    parser.add_argument(
        "--threads", type=THREADS.arg(), default=1, help=f"torch threads per request; {THREADS}"
    )
    parser.add_argument("--device", type=cli.device, default="cpu", help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    if args.translator is None and args.index is None:
        parser.error("give --translator CKPT, --index DIR or both")
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('error: the demo needs Gradio: pip install -e ".[demo]"', file=sys.stderr)
        return 2
    try:
        translate = search = None
        if args.translator is not None:
            from lit_seq2seq.demo import TranslateDemo

            translate = TranslateDemo(args.translator, args.max_lines, args.max_beam, args.device)
        if args.index is not None:
            from lit_devise.demo import SearchDemo

            search = SearchDemo(args.index, args.max_k, args.images_root, args.device)
            if search.image_problem:
                print(f"warning: {search.image_problem}", file=sys.stderr)
        page = build(translate, search, args.concurrency, args.queue)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        page.launch(
            server_name=args.host,
            server_port=args.port,
            prevent_thread_lock=True,
            quiet=True,
            allowed_paths=[search.images_root] if search is not None else None,
            max_file_size=MAX_UPLOAD,
        )
    except (OSError, ValueError) as err:  # a busy port; a proxy that hides localhost
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"error: cannot serve on {args.host}:{args.port} ({first})", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)  # once serving: a failed start leaves the process as it was
    print(f"url: {page.local_url}", flush=True)
    try:
        page.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        page.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
