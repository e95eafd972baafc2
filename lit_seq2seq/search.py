"""Decoding: greedy (stops when every sentence has emitted eos) and beam search.

Beam search keeps ``beam_size`` hypotheses per sentence, ranks finished ones by log-probability
divided by the GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., arXiv:1609.08144,
section 7), and stops a sentence once it has ``beam_size`` finished hypotheses. With one beam it
picks the argmax at every step: greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lit_seq2seq.model import Seq2Seq


@dataclass
class Greedy:
    """Greedy decodes of a batch.

    Attributes:
        tokens: (batch, steps) predicted ids; after a row's eos, its entries are meaningless.
        logits: (batch, steps, vocab).
        attention: (batch, steps, src_len), or None without attention.
        all_done_step: index of the first step after which every row had emitted eos, or None.
    """

    tokens: torch.Tensor
    logits: torch.Tensor
    attention: torch.Tensor | None
    all_done_step: int | None


@torch.no_grad()
def greedy(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len: int,
    stop_early: bool = True,
) -> Greedy:
    """Feed back the argmax for up to ``max_len`` steps.

    With ``stop_early`` decoding ends once every row has emitted eos; without it, all ``max_len``
    steps run (what a loss over fixed-length targets needs) and ``all_done_step`` says where the
    early stop would have been.
    """
    memory, hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), model.bos_idx, dtype=torch.long, device=src.device)
    done = torch.zeros_like(prev, dtype=torch.bool)
    tokens, logits, weights, all_done = [], [], [], None
    for step in range(max_len):
        step_logits, hidden, w = model.decoder.step(prev, hidden, memory)
        prev = step_logits.argmax(-1)
        tokens.append(prev)
        logits.append(step_logits)
        if w is not None:
            weights.append(w)
        done |= prev == model.eos_idx
        if all_done is None and bool(done.all()):
            all_done = step
            if stop_early:
                break
    attention = torch.stack(weights, 1) if weights else None
    return Greedy(torch.stack(tokens, 1), torch.stack(logits, 1), attention, all_done)


def length_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam_size: int,
    max_len: int,
    alpha: float = 1.0,
) -> tuple[list[list[int]], list[torch.Tensor | None]]:
    """Best hypothesis per sentence (ids without eos) and its attention (steps, src_len) or None."""
    if beam_size < 1:
        raise ValueError(f"beam_size={beam_size}: expected >= 1")
    batch, k = src.size(0), beam_size
    memory, hidden = model.encode(src, src_lengths)
    memory = memory.repeat(k)
    hidden = (
        tuple(h.repeat_interleave(k, 1) for h in hidden)
        if isinstance(hidden, tuple)
        else hidden.repeat_interleave(k, 1)
    )  # (layers, batch * k, hidden)
    scores = torch.full((batch, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # only one live hypothesis at the start
    prev = torch.full((batch * k,), model.bos_idx, dtype=torch.long, device=src.device)
    history = torch.zeros((batch * k, 0), dtype=torch.long, device=src.device)
    attn_history: torch.Tensor | None = None
    finished: list[list[tuple[float, list[int], torch.Tensor | None]]] = [[] for _ in range(batch)]
    for step in range(max_len):
        logits, hidden, w = model.decoder.step(prev, hidden, memory)
        log_probs = torch.log_softmax(logits, -1)  # (batch * k, vocab)
        vocab = log_probs.size(-1)
        candidates = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        top_scores, top_ids = candidates.topk(2 * k, dim=-1)  # (batch, 2k)
        beam_ids, token_ids = top_ids // vocab, top_ids % vocab
        new_scores = torch.full_like(scores, float("-inf"))
        rows = torch.zeros((batch, k), dtype=torch.long, device=src.device)
        new_tokens = torch.full((batch, k), model.eos_idx, dtype=torch.long, device=src.device)
        for b in range(batch):
            alive = 0
            for score, beam, token in zip(
                top_scores[b].tolist(), beam_ids[b].tolist(), token_ids[b].tolist(), strict=True
            ):
                if len(finished[b]) >= k or score == float("-inf"):
                    break
                row = b * k + beam
                if token == model.eos_idx:
                    attn = None
                    if w is not None:
                        past = attn_history[row] if attn_history is not None else w[row][:0]
                        attn = torch.cat([past.reshape(-1, w.size(-1)), w[row : row + 1]])
                    normalized = score / length_penalty(step + 1, alpha)
                    finished[b].append((normalized, history[row].tolist(), attn))
                elif alive < k:
                    new_scores[b, alive], rows[b, alive] = score, row
                    new_tokens[b, alive] = token
                    alive += 1
                if alive == k:
                    break
        if all(len(f) >= k for f in finished):
            break
        flat_rows = rows.view(-1)
        scores = new_scores
        prev = new_tokens.view(-1)
        history = torch.cat([history[flat_rows], prev.unsqueeze(1)], 1)
        if w is not None:
            step_w = w[flat_rows].unsqueeze(1)  # (batch * k, 1, src_len)
            attn_history = (
                step_w if attn_history is None else torch.cat([attn_history[flat_rows], step_w], 1)
            )
        hidden = (
            tuple(h[:, flat_rows] for h in hidden)
            if isinstance(hidden, tuple)
            else hidden[:, flat_rows]
        )
    best_tokens, best_attn = [], []
    for b in range(batch):
        if len(finished[b]) < k:  # max_len reached: the live hypotheses count too
            for j in range(k):
                row = b * k + j
                if scores[b, j] > float("-inf"):
                    attn = attn_history[row] if attn_history is not None else None
                    normalized = float(scores[b, j]) / length_penalty(history.size(1), alpha)
                    finished[b].append((normalized, history[row].tolist(), attn))
        _, tokens, attn = max(finished[b], key=lambda f: f[0])
        best_tokens.append(tokens)
        best_attn.append(attn)
    return best_tokens, best_attn
