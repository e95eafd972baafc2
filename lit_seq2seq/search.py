"""Decoding: greedy and batched beam search.

Both decode a whole batch of sentences with tensors and never emit bos or padding. Each sentence
has its own length limit, ``max_len`` or twice its source length plus ten tokens (eos included),
so neither the reference nor the other sentences of the batch decide where it ends. Greedy feeds
back the argmax and stops once every sentence has emitted eos or reached its limit.

Beam search keeps ``beam_size`` hypotheses per sentence in one (batch * beam) decoder batch: a
finished hypothesis stays in its slot and can only be extended by eos at no cost, so every step
is one ``topk`` over (batch, beam * vocab) with no Python loop over sentences. Hypotheses are
ranked by log-probability divided by the GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu
et al., arXiv:1609.08144, section 7); candidates that are still growing all have the same length,
so the penalty only matters when they compete with finished ones. A sentence is done once its
best-ranked hypothesis has finished (as in Joey NMT and OpenNMT) or it reaches its limit; it then
leaves the batch, so the rest of the batch runs on fewer rows, and the result of a sentence does
not depend on the batch it is in. With one beam this is greedy decoding. ``beam_hypotheses``
returns each sentence's whole final beam (its n-best list, with scores); ``beam_search`` its best.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lit_common.errors import InputError
from lit_seq2seq.decoder import DecoderState, Memory
from lit_seq2seq.model import Seq2Seq


@dataclass
class Greedy:
    """Greedy decodes of a batch.

    Attributes:
        tokens: (batch, steps) predicted ids; a row that reached its length limit without eos
            has eos from there on; after a row's eos, its entries are meaningless.
        logits: (batch, steps, vocab), or None unless asked for.
        attention: (batch, steps, src_len), or None without attention.
        all_done_step: index of the first step after which every row had emitted eos, or None.
    """

    tokens: torch.Tensor
    logits: torch.Tensor | None
    attention: torch.Tensor | None
    all_done_step: int | None


def length_limits(src_lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(batch,) most output tokens per sentence, eos included: ``max_len`` for every sentence,
    or by default twice its source length plus ten."""
    if max_len is not None:
        return torch.full_like(src_lengths, max_len)
    return 2 * src_lengths + 10


def _never_emitted(model: Seq2Seq) -> list[int]:
    return [model.bos_idx, model.pad_idx]


@torch.no_grad()
def greedy(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len: int | None = None,
    min_len: int = 0,
    return_logits: bool = False,
    encoded: tuple[Memory, DecoderState] | None = None,
) -> Greedy:
    """Feed back the argmax until every row emitted eos or reached its length limit.

    Args:
        model: the network, in eval mode.
        src: (batch, src_len) source ids.
        src_lengths: (batch,) source lengths.
        max_len: most output tokens of every sentence; default ``length_limits``'s.
        min_len: run at least this many steps even when every row is done (a loss over
            fixed-length targets needs the logits); the tokens past a row's limit are eos, and
            ``all_done_step`` still says where decoding would have stopped.
        return_logits: keep every step's logits (as the network gave them).
        encoded: ``model.encode(src, src_lengths)`` when the caller has it already.
    """
    limits = length_limits(src_lengths, max_len).to(src.device)  # (batch,)
    steps = max(int(limits.max()), min_len)
    memory, state = encoded if encoded is not None else model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), model.bos_idx, dtype=torch.long, device=src.device)
    done = torch.zeros_like(prev, dtype=torch.bool)
    tokens, logits, weights, all_done = [], [], [], None
    for step in range(steps):
        step_logits, state, w = model.decoder.step(prev, state, memory)
        choice = step_logits.detach().clone()
        choice[:, _never_emitted(model)] = float("-inf")
        prev = torch.where(step >= limits, model.eos_idx, choice.argmax(-1))  # (batch,)
        tokens.append(prev)
        if return_logits:
            logits.append(step_logits)
        if w is not None:
            weights.append(w)
        done |= prev == model.eos_idx
        if all_done is None and bool(done.all()):
            all_done = step
        if all_done is not None and step + 1 >= min_len:
            break
    attention = torch.stack(weights, 1) if weights else None
    stacked = torch.stack(logits, 1) if logits else None
    return Greedy(torch.stack(tokens, 1), stacked, attention, all_done)


def length_penalty(length: int | torch.Tensor, alpha: float) -> float | torch.Tensor:
    """GNMT's ``((5 + length) / 6) ** alpha``; elementwise for a tensor of lengths."""
    return ((5 + length) / 6) ** alpha


@dataclass
class Hypothesis:
    """One hypothesis of a sentence's final beam.

    Attributes:
        ids: output ids, eos excluded.
        log_prob: summed log-probability of its tokens (eos included when finished).
        score: ``log_prob`` divided by the length penalty: what ranks the beam.
        finished: it ended with eos (else the sentence reached its length limit, or the best
            hypothesis finished while this one was still growing).
        attention: (steps, src_len) weights, or None.
    """

    ids: list[int]
    log_prob: float
    score: float
    finished: bool
    attention: torch.Tensor | None


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam_size: int,
    max_len: int | None = None,
    alpha: float = 1.0,
    return_attention: bool = True,
) -> tuple[list[list[int]], list[torch.Tensor | None]]:
    """Best hypothesis per sentence: its ids (eos excluded) and attention (steps, src_len) or None.

    Args:
        model: the network, in eval mode.
        src: (batch, src_len) source ids.
        src_lengths: (batch,) source lengths.
        beam_size: hypotheses kept per sentence; 1 is greedy decoding.
        max_len: most output tokens of every sentence; default ``length_limits``'s. A sentence
            that reaches its limit ends with its best hypothesis, finished or not.
        alpha: length penalty exponent; 0 ranks by log-probability alone.
        return_attention: keep each hypothesis's attention weights (None for all without).
    """
    beams = beam_hypotheses(model, src, src_lengths, beam_size, max_len, alpha, return_attention)
    return [b[0].ids for b in beams], [b[0].attention for b in beams]


@torch.no_grad()
def beam_hypotheses(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam_size: int,
    max_len: int | None = None,
    alpha: float = 1.0,
    return_attention: bool = True,
) -> list[list[Hypothesis]]:
    """Every sentence's final beam, best first (the n-best list; ``beam_search`` keeps the
    first): the up to ``beam_size`` hypotheses it held when it was done. Arguments as
    ``beam_search``'s."""
    if beam_size < 1:
        raise InputError(f"beam_size={beam_size}: expected >= 1")
    n_sentences, k, device = src.size(0), beam_size, src.device
    limits = length_limits(src_lengths, max_len).to(device)  # (n_sentences,)
    memory, state = model.encode(src, src_lengths)
    memory, state = memory.repeat(k), state.repeat(k)
    active = torch.arange(n_sentences, device=device)  # sentences still decoding
    scores = torch.full((n_sentences, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis at the start, so the first topk has no duplicates
    finished = torch.zeros((n_sentences, k), dtype=torch.bool, device=device)
    lengths = torch.zeros((n_sentences, k), dtype=torch.long, device=device)  # eos included
    history = torch.zeros((n_sentences * k, 0), dtype=torch.long, device=device)
    attention: torch.Tensor | None = None  # (active * k, steps, src_len)
    prev = torch.full((n_sentences * k,), model.bos_idx, dtype=torch.long, device=device)
    out: list[list[Hypothesis]] = [[] for _ in range(n_sentences)]

    def emit(sentences: list[int]) -> None:
        """Rows ``sentences`` of the active batch are done: each one's beam, ranked as the search
        ranks (the whole batch's scores over its length penalties, as before the sentences
        finish; a stable sort, so ties keep the lowest slot, as argmax would). Moved to Python
        once per call, not per hypothesis."""
        ranked = scores / length_penalty(lengths, alpha)  # (batch, k)
        order = torch.sort(ranked, dim=-1, descending=True, stable=True).indices
        rows = torch.tensor(sentences, device=device)
        picked = [t[rows].tolist() for t in (order, ranked, scores, lengths, finished)]
        for j, i in enumerate(sentences):
            block = history[i * k : (i + 1) * k].tolist()
            sentence = int(active[i])
            slots, ranks, logps, lens, ends = (values[j] for values in picked)
            for b in slots:
                if logps[b] == float("-inf"):  # a slot never filled (vocabulary below k)
                    continue
                ids = block[b][: lens[b]]
                out[sentence].append(
                    Hypothesis(
                        ids[:-1] if ids and ids[-1] == model.eos_idx else ids,
                        logps[b],
                        ranks[b],
                        ends[b],
                        attention[i * k + b, : lens[b]] if attention is not None else None,
                    )
                )

    for step in range(int(limits.max())):
        batch = active.numel()
        logits, state, w = model.decoder.step(prev, state, memory)
        log_probs = torch.log_softmax(logits.float(), -1).view(batch, k, -1)  # (batch, k, vocab)
        log_probs[..., _never_emitted(model)] = float("-inf")
        vocab = log_probs.size(-1)
        if step == 0:
            only_eos = torch.full((vocab,), float("-inf"), device=device)
            only_eos[model.eos_idx] = 0.0  # a finished hypothesis continues as itself
        log_probs = torch.where(finished.unsqueeze(-1), only_eos, log_probs)
        candidates = scores.unsqueeze(-1) + log_probs  # (batch, k, vocab)
        cand_lengths = torch.where(finished, lengths, step + 1)  # (batch, k)
        ranked = candidates / length_penalty(cand_lengths, alpha).unsqueeze(-1)
        _, top = ranked.view(batch, -1).topk(k, dim=-1)  # (batch, k), sorted, into k * vocab
        beams, tokens = top // vocab, top % vocab  # (batch, k)
        scores = candidates.view(batch, -1).gather(1, top)
        was_finished = finished.gather(1, beams)
        lengths = cand_lengths.gather(1, beams)
        finished = was_finished | (tokens == model.eos_idx)
        rows = (torch.arange(batch, device=device).unsqueeze(1) * k + beams).view(-1)  # parents
        emitted = tokens.masked_fill(was_finished, model.pad_idx).view(-1, 1)
        history = torch.cat([history[rows], emitted], 1)  # (batch * k, step + 1)
        if w is not None and return_attention:
            step_w = w[rows].unsqueeze(1)  # (batch * k, 1, src_len)
            attention = step_w if attention is None else torch.cat([attention[rows], step_w], 1)
        state, prev = state.select(rows), tokens.view(-1)
        # Done: the best-ranked hypothesis has finished, or the sentence reached its limit.
        done = finished[:, 0] | (step + 1 >= limits[active])  # (batch,)
        if bool(done.any()):
            emit(done.nonzero().view(-1).tolist())
            keep = (~done).nonzero().view(-1)  # (still,)
            if keep.numel() == 0:
                return out
            kept_rows = (keep.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
            active, scores, finished, lengths = (
                active[keep],
                scores[keep],
                finished[keep],
                lengths[keep],
            )
            history, prev = history[kept_rows], prev[kept_rows]
            state, memory = state.select(kept_rows), memory.select(kept_rows)
            if attention is not None:
                attention = attention[kept_rows]
    return out  # every sentence is done by its limit
