"""Word tokenisation with spaCy's rule-based French and English tokenisers.

``spacy.blank(lang)`` carries each language's real tokenizer exceptions (French elisions ``l'``,
``qu'``; hyphenated inversions ``a``, ``-t``, ``-il``) and needs no model download. Tatoeba French
puts narrow/no-break spaces (U+202F, U+00A0) before ``? ! : ;``; they are turned into plain spaces
first so the punctuation comes out as its own token.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

from lit_common.errors import InputError
from lit_common.text import clean

# A "sentence" longer than this is a file without line breaks or binary data, not a sentence:
# readers skip and count it, translate answers it with an error line. spaCy's own limit
# (nlp.max_length, 1,000,000) would raise mid-corpus instead.
MAX_CHARS = 10_000
_SPACES = re.compile(r"[\u00a0\u2007\u202f\u2009\u200a\u3000\s]+")


def normalize(text: str) -> str:
    """Invisible and control characters removed (``lit_common.text.clean``); NFC; Unicode space
    runs as one ASCII space; stripped; U+2019 apostrophe as an ASCII quote."""
    text = unicodedata.normalize("NFC", clean(text)).replace("\u2019", "'")
    return _SPACES.sub(" ", text).strip()


class Tokenizer:
    """Tokenise many sentences of one language with ``nlp.pipe``.

    Args:
        lang: spaCy language code, e.g. ``"fr"`` or ``"en"``.
        lowercase: lowercase tokens (after tokenising, so rules see the original case).
        n_process: processes for ``nlp.pipe``; 1 avoids process start-up on small corpora.
        batch_size: sentences per ``nlp.pipe`` batch.
    """

    def __init__(
        self, lang: str, lowercase: bool = True, n_process: int = 1, batch_size: int = 1000
    ) -> None:
        import spacy

        try:
            self.nlp = spacy.blank(lang)
        except Exception as err:  # spaCy raises its own ImportError/KeyError variants
            raise InputError(
                f"Tokenizer(lang={lang!r}): spaCy has no such language ({err})"
            ) from err
        self.lang = lang
        self.lowercase = lowercase
        self.n_process = n_process
        self.batch_size = batch_size

    def __call__(self, text: str) -> list[str]:
        return next(iter(self.pipe([text])))

    def pipe(self, texts: Iterable[str]) -> Iterator[list[str]]:
        """Tokens of each text, in order; whitespace tokens are dropped."""
        for spaced in self.pipe_spaced(texts):
            yield [token for token, _ in spaced]

    def pipe_spaced(self, texts: Iterable[str]) -> Iterator[list[tuple[str, bool]]]:
        """``(token, followed by a space)`` of each text: what ``Detokenizer.learn`` reads.

        Raises:
            InputError: a text over ``MAX_CHARS`` characters (readers skip those first).
        """
        docs = self.nlp.pipe(
            (self._checked(normalize(t)) for t in texts),
            batch_size=self.batch_size,
            n_process=self.n_process,
        )
        for doc in docs:
            tokens = [(t.text, bool(t.whitespace_)) for t in doc if not t.is_space]
            yield [(t.lower(), s) for t, s in tokens] if self.lowercase else tokens

    @staticmethod
    def _checked(text: str) -> str:
        if len(text) > MAX_CHARS:
            raise InputError(
                f"a text of {len(text):,} characters is over the tokenizer's limit of "
                f"{MAX_CHARS:,}: a file without line breaks, or not text"
            )
        return text
