"""The demo page's Search tab (``lit-demo --index DIR``): words (and sums of words) -> a gallery
of the nearest images with their cosine scores; an uploaded image -> its nearest labels and
nearest images; ``k`` as a slider.

``SearchDemo`` holds the logic in plain Python over one ``search.Searcher`` (the index and its
checkpoint opened once), with the search CLI's own checks: words must be among the index's query
words (at most ``wordvecs.MAX_QUERY_WORDS``), an image must decode within
``images.MAX_PIXELS``, ``k`` within the CLI's range (and the page's ``max_k``).
``SearchDemo.tab`` lays it out with Gradio, imported there only. When the index's checkpoint is
missing or was replaced, text search still works and the image part says why it cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lit_common.errors import InputError
from lit_common.ranges import Int, whole
from lit_devise.images import ImageDataError
from lit_devise.search import K, Searcher

EXAMPLES = ("golf ball", "church", "truck", "music", "fish", "sport")


class SearchDemo:
    """An index (and its checkpoint, for image queries) opened once, answering the page.

    Args:
        index_dir: folder written by ``lit_devise.index``.
        max_k: most results a request may ask for.
        images_root: where the indexed images are now (default: where they were indexed).
        device: where image queries are embedded.
    """

    def __init__(
        self,
        index_dir: str | Path,
        max_k: int = 50,
        images_root: str | None = None,
        device: str = "cpu",
    ) -> None:
        self.max_k = K.check("max_k", max_k)
        self.ks = Int(1, self.max_k)
        self.searcher = Searcher(index_dir, images_root=images_root, device=device)
        self.searcher.index("images")
        self.searcher.index("labels")
        self.image_problem = ""
        try:
            self.searcher.module()
        except InputError as err:  # a missing or replaced checkpoint: text search still works
            self.image_problem = f"image search is off: {err}"

    @property
    def images_root(self) -> str:
        """The folder the gallery's files are in (the server may serve only those)."""
        return self.searcher.root

    def words(self, text: str, k: int = 9) -> list[tuple[str, str]]:
        """The ``k`` images nearest to the words' mean vector: ``(path, "rank. score")``.

        Raises:
            InputError: no words, too many, a word without a vector, ``k`` out of range.
        """
        k = self.ks.check("k", whole(k))
        if not isinstance(text, str):
            raise InputError('no words: type one or more words, e.g. "golf ball"')
        results = self.searcher.text(text, k, "images")
        return [(path, f"{rank}. {score:.3f}") for rank, score, path in results]

    def image(self, path: str | None, k: int = 9) -> tuple[list[list[Any]], list[tuple[str, str]]]:
        """An image file's nearest labels ``[rank, label, score]`` and nearest images.

        Raises:
            InputError: no file, not a readable image, over the pixel budget, ``k`` out of
                range, or image search off (the reason).
        """
        k = self.ks.check("k", whole(k))
        if self.image_problem:
            raise InputError(self.image_problem)
        if not path:
            raise ImageDataError("no image: upload a photo (JPEG, PNG, ...)")
        query = self.searcher.embed(str(path))  # once, for both searches
        labels = self.searcher.nearest(query, k, "labels")
        images = self.searcher.nearest(query, k, "images")
        return (
            [[rank, label, round(score, 3)] for rank, score, label in labels],
            [(p, f"{rank}. {score:.3f}") for rank, score, p in images],
        )

    def facts(self) -> str:
        """The index's and checkpoint's facts as Markdown."""
        info = self.searcher.info
        skipped = len(info.get("unreadable") or [])
        rows = [
            f"**index** {info.get('images', 0):,} images"
            + (f" ({skipped} unreadable, skipped)" if skipped else "")
            + f", {info.get('labels', 0):,} labels ({info.get('classes', 0)} classes), "
            f"{info.get('query_words', 0):,} query words",
            f"**checkpoint** `{Path(info['ckpt']).name}`",
        ]
        if self.image_problem:
            rows.append(self.image_problem)
            return " · ".join(rows)
        module = self.searcher.module()
        devise, facts = module.devise or {}, dict(module.facts)
        names, seen = devise["class_names"], devise["seen"]
        held = [n.split(",")[0] for n, s in zip(names, seen, strict=True) if not s]
        if held:
            rows.append(f"**held out in training** {', '.join(held)}")
        rows += [f"**{group}** {choice}" for group, choice in facts.get("config", {}).items()]
        for metric, score in facts.get("best", {}).items():
            rows.append(f"**best {metric}** {score:.3f}")
        return " · ".join(rows)

    def tab(self, concurrency_id: str | None = None) -> None:
        """The Search tab's components and events, inside the caller's ``gr.Blocks``. API names:
        ``/search_text`` (words, k -> gallery) and ``/search_image`` (image file, k -> labels,
        gallery). ``concurrency_id``: the queue's group whose limit these events share."""
        import gradio as gr

        gr.Markdown(self.facts())
        k = gr.Slider(1, self.max_k, value=min(9, self.max_k), step=1, label="k (results)")
        with gr.Row():
            with gr.Column():
                words = gr.Textbox(label='words (averaged: "golf ball")', elem_id="words")
                button = gr.Button("Search images", variant="primary", elem_id="search-button")
                gr.Examples([[e] for e in EXAMPLES], inputs=[words], label="examples")
            with gr.Column():
                upload = gr.File(
                    label="or an image: its nearest labels and images",
                    file_types=["image"],
                    type="filepath",
                    elem_id="upload",
                )
                image_button = gr.Button("Search by image", elem_id="image-button")
        labels = gr.Dataframe(
            headers=["rank", "label", "cosine"],
            label="nearest labels (of an uploaded image)",
            interactive=False,
            elem_id="labels",
        )
        gallery = gr.Gallery(label="nearest images", columns=6, elem_id="gallery")

        def on_words(text: str, k: float) -> list[tuple[str, str]]:
            try:
                return self.words(text, k)
            except InputError as err:
                raise gr.Error(str(err)) from None

        def on_image(path: str | None, k: float) -> tuple[Any, Any]:
            try:
                return self.image(path, k)
            except InputError as err:
                raise gr.Error(str(err)) from None

        # preprocess=False: words and k reach the handler as sent, so it answers out-of-range k
        # itself (the upload needs Gradio's preprocessing: it becomes a file path).
        raw = {"preprocess": False, "concurrency_id": concurrency_id}
        button.click(on_words, [words, k], gallery, api_name="search_text", **raw)
        words.submit(on_words, [words, k], gallery, api_visibility="private", **raw)
        image_button.click(
            on_image,
            [upload, k],
            [labels, gallery],
            api_name="search_image",
            concurrency_id=concurrency_id,
        )
