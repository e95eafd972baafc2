"""Turn output tokens back into text written the way the training references are.

spaCy records whether a space followed each token, so the training targets say which tokens are
written without a space before them (``'s``, ``n't``, ``?``, the second half of ``gon na``) and
after them (``(``, the hyphen of ``twenty - one``). ``Detokenizer.learn`` counts that for every
token of the target vocabulary; rare tokens fall back to English defaults. The translate CLI and
BLEU then see "why is the doctor's black car here?", not "why is the doctor 's black car here ?",
and re-tokenising the text gives back the same tokens (the data report counts how often).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

# Used for tokens seen too rarely to learn from, and by checkpoints without learned rules.
DEFAULT_LEFT = frozenset(
    {"?", "!", ".", ",", ":", ";", "%", ")", "]", "}", "...", "'s", "n't", "'re", "'ve", "'ll"}
    | {"'d", "'m", "'", "na"}
)
DEFAULT_RIGHT = frozenset({"(", "[", "{", "$", "#"})


class Detokenizer:
    """Join tokens with a space except where the token before or after attaches.

    Args:
        attach_left: tokens written without a space before them.
        attach_right: tokens written without a space after them.
    """

    def __init__(
        self, attach_left: Iterable[str] = DEFAULT_LEFT, attach_right: Iterable[str] = DEFAULT_RIGHT
    ) -> None:
        self.attach_left = frozenset(attach_left)
        self.attach_right = frozenset(attach_right)

    @classmethod
    def learn(
        cls,
        sentences: Iterable[Sequence[tuple[str, bool]]],
        vocabulary: Iterable[str] | None = None,
        min_count: int = 3,
    ) -> Detokenizer:
        """Rules from ``(token, followed by a space)`` sentences (``Tokenizer.pipe_spaced``).

        A token attaches on a side when most of its occurrences there had no space; tokens seen
        fewer than ``min_count`` times on a side keep the default rule. ``vocabulary`` limits the
        stored rules to the tokens the model can emit.
        """
        sentences = [list(s) for s in sentences]
        seen_left: Counter[str] = Counter()
        glued_left: Counter[str] = Counter()
        for sentence in sentences:
            for (_, space), (following, _) in itertools.pairwise(sentence):
                seen_left[following] += 1
                glued_left[following] += not space
        tokens = set(vocabulary) if vocabulary is not None else set(seen_left)
        known = tokens | set(seen_left)
        left = {t for t in known if _decide(t, seen_left, glued_left, DEFAULT_LEFT, min_count)}
        # A missing space before a left-attaching token ("here?") says nothing about "here".
        seen_right: Counter[str] = Counter()
        glued_right: Counter[str] = Counter()
        for sentence in sentences:
            for (token, space), (following, _) in itertools.pairwise(sentence):
                if following not in left:
                    seen_right[token] += 1
                    glued_right[token] += not space
        right = {t for t in tokens if _decide(t, seen_right, glued_right, DEFAULT_RIGHT, min_count)}
        left &= tokens
        return cls(left, right)

    def __call__(self, tokens: Sequence[str]) -> str:
        """The text of ``tokens``: ``["why", "is", "it", "here", "?"]`` -> "why is it here?"."""
        out: list[str] = []
        for i, token in enumerate(tokens):
            if i > 0 and token not in self.attach_left and tokens[i - 1] not in self.attach_right:
                out.append(" ")
            out.append(token)
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint."""
        return {"attach_left": sorted(self.attach_left), "attach_right": sorted(self.attach_right)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Detokenizer:
        """From ``to_dict``'s output; None (an older checkpoint) gives the defaults."""
        if data is None:
            return cls()
        return cls(data["attach_left"], data["attach_right"])


def _decide(
    token: str, seen: Counter[str], glued: Counter[str], default: frozenset[str], min_count: int
) -> bool:
    """Attach when most occurrences had no space; the default rule below ``min_count``."""
    if seen[token] < min_count:
        return token in default
    return 2 * glued[token] > seen[token]
