"""AWD-LSTM's regularisers and word dropout: mask shapes and per-batch draws, masks fixed across
time steps, identity in eval mode, DropConnect through the fused kernels, the layer-by-layer RNN
equal to the fused one, and AR/TAR's exact values on a hand-made case."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lit_common.errors import InputError
from lit_seq2seq.model import REGULARISER_RATES, Seq2Seq, Seq2SeqConfig
from lit_seq2seq.regularisers import (
    DropMasks,
    SideRegularisers,
    activation_penalty,
    embed,
    locked_mask,
    word_dropout,
)
from lit_seq2seq.rnn import LayeredRNN, apply_locked, dropped_weights, make_rnn, run_rnn

SMALL = dict(enc_emb_dim=8, enc_hidden=6, dec_emb_dim=10, dec_hidden=10, attn_size=5)
ALL_ON = {
    **{f"{side}_{name}": 0.3 for side in ("enc", "dec") for name in REGULARISER_RATES},
    "ar_alpha": 2.0,
    "tar_beta": 1.0,
}


def make(**overrides: object) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(**{**SMALL, **overrides}), src_vocab_size=13, tgt_vocab_size=11)


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src = torch.tensor([[5, 6, 7, 2], [8, 2, 1, 1], [9, 10, 2, 1]])
    tgt = torch.tensor([[4, 5, 2], [6, 2, 1], [7, 8, 2]])
    return src, torch.tensor([4, 2, 3]), tgt


def test_locked_mask_is_one_per_sequence_and_feature_reused_at_every_step() -> None:
    torch.manual_seed(1)
    like = torch.empty(0)
    mask = locked_mask(3, 16, 0.5, like)
    assert mask is not None and mask.shape == (3, 1, 16)
    assert set(mask.unique().tolist()) <= {0.0, 2.0}
    out = apply_locked(torch.ones(3, 5, 16), mask)
    assert torch.equal(out, mask.expand(3, 5, 16))  # the same mask at each of the 5 steps
    assert torch.equal(apply_locked(torch.ones(3, 16), mask), mask[:, 0])  # one step
    assert locked_mask(3, 16, 0.0, like) is None
    assert not torch.equal(mask, locked_mask(3, 16, 0.5, like))  # a new draw per batch


def test_locked_dropout_on_a_packed_sequence_matches_the_padded_one() -> None:
    torch.manual_seed(2)
    x = torch.randn(3, 4, 5)
    lengths = torch.tensor([2, 4, 3])
    mask = locked_mask(3, 5, 0.4, x)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    got, _ = pad_packed_sequence(apply_locked(packed, mask), batch_first=True)
    want, _ = pad_packed_sequence(
        pack_padded_sequence(x * mask, lengths, batch_first=True, enforce_sorted=False),
        batch_first=True,
    )
    assert torch.equal(got, want)


def test_embedding_dropout_drops_whole_word_types() -> None:
    torch.manual_seed(3)
    emb = nn.Embedding(7, 4, padding_idx=1)
    rows = DropMasks.draw(SideRegularisers(embed_drop=0.5), emb, make_rnn("gru", 4, 3, 1, 0.0),
                          2, 4, 3).rows  # fmt: skip
    assert rows is not None and rows.shape == (7, 1)
    ids = torch.tensor([[3, 4, 3, 5], [4, 3, 6, 5]])
    out = embed(emb, ids, rows)
    for word in (3, 4, 5):  # a word is dropped at every position or at none, scaled by 1/(1-p)
        expected = emb.weight[word] * rows[word]
        assert torch.equal(out[ids == word], expected.expand(int((ids == word).sum()), 4))
    assert torch.equal(embed(emb, ids, None), emb(ids))


def test_word_dropout_drops_whole_positions_only_in_training() -> None:
    torch.manual_seed(4)
    emb = torch.randn(4, 6, 5) + 3.0  # no zeros of its own
    out = word_dropout(emb, 0.5, training=True)
    dropped = (out == 0).all(-1)
    kept = ~dropped
    assert dropped.any() and kept.any()
    assert ((out == 0).any(-1) == dropped).all()  # a position loses all features or none
    assert torch.allclose(out[kept], emb[kept] * 2.0)
    assert torch.equal(word_dropout(emb, 0.5, training=False), emb)
    assert torch.equal(word_dropout(emb, 0.0, training=True), emb)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_weight_drop_runs_the_fused_rnn_with_the_dropped_hidden_matrices(rnn_type: str) -> None:
    torch.manual_seed(5)
    rnn = make_rnn(rnn_type, 4, 3, 2, 0.0, bidirectional=True)
    before = copy.deepcopy(rnn)
    weights = dropped_weights(rnn, 0.5)
    assert sorted(weights) == ["weight_hh_l0", "weight_hh_l0_reverse", "weight_hh_l1",
                               "weight_hh_l1_reverse"]  # fmt: skip
    for name, value in weights.items():
        zero = value == 0
        assert zero.any() and torch.allclose(value[~zero], getattr(rnn, name)[~zero] * 2.0)
    x = torch.randn(2, 5, 4)
    got, _ = run_rnn(rnn, x, None, weights)
    reference = make_rnn(rnn_type, 4, 3, 2, 0.0, bidirectional=True)
    reference.load_state_dict({**rnn.state_dict(), **{k: v.detach() for k, v in weights.items()}})
    want, _ = reference(x)
    assert torch.allclose(got, want, atol=1e-6)
    got.sum().backward()  # the gradient reaches the one stored parameter, through the mask
    grad = rnn.weight_hh_l0.grad
    assert grad is not None and (grad[weights["weight_hh_l0"] == 0] == 0).all()
    assert sorted(rnn.state_dict()) == sorted(reference.state_dict())  # no new entries
    plain, _ = rnn(x)  # afterwards the module computes with its own weights again
    assert torch.equal(plain, before(x)[0])
    assert not torch.allclose(plain, got)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_layered_rnn_equals_the_fused_rnn_with_the_same_weights(
    rnn_type: str, bidirectional: bool
) -> None:
    torch.manual_seed(6)
    fused = make_rnn(rnn_type, 4, 3, 3, 0.0, bidirectional)
    layered = LayeredRNN(rnn_type, 4, 3, 3, 0.0, bidirectional)
    for i, layer in enumerate(layered):
        layer.load_state_dict(
            {name: getattr(fused, name.replace("_l0", f"_l{i}")) for name in layer.state_dict()}
        )
    x = torch.randn(2, 5, 4)
    lengths = torch.tensor([5, 3])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    (want, want_h), (got, got_h) = fused(packed), layered(packed)
    assert torch.allclose(want.data, got.data, atol=1e-6)
    for a, b in zip(*(h if isinstance(h, tuple) else (h,) for h in (want_h, got_h)), strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


def test_layered_rnn_applies_locked_masks_between_layers_of_an_unsorted_packed_batch() -> None:
    torch.manual_seed(7)
    layered = LayeredRNN("gru", 4, 3, 2, 0.0, bidirectional=True)
    x = torch.randn(3, 5, 4)
    lengths = torch.tensor([2, 5, 3])  # not sorted: PackedSequence reorders the rows
    mask = locked_mask(3, 6, 0.5, x)
    assert mask is not None

    def pack(t: torch.Tensor) -> object:
        return pack_padded_sequence(t, lengths, batch_first=True, enforce_sorted=False)

    got, got_h = layered(pack(x), between=[mask])
    first, first_h = layered[0](pack(x))  # by hand: layer 0, the mask on padded rows, layer 1
    padded, _ = pad_packed_sequence(first, batch_first=True)
    want, want_h = layered[1](pack(padded * mask))
    assert torch.allclose(got.data, want.data, atol=1e-6)
    assert torch.allclose(got_h, torch.cat([first_h, want_h]), atol=1e-6)


def test_locked_hidden_needs_two_layers() -> None:
    with pytest.raises(InputError, match=r"enc_locked_hidden=0\.2 needs at least 2 layers"):
        Seq2SeqConfig(enc_layers=1, dec_layers=1, enc_locked_hidden=0.2)


def test_masks_are_drawn_once_per_batch_and_shared_by_every_decoder_step() -> None:
    model = make(**ALL_ON, attention_style="input_feeding").train()  # a step-by-step decoder
    src, lengths, tgt = batch()
    seen: list[object] = []
    step = model.decoder.step

    def spy(prev: torch.Tensor, state: object, memory: object, masks: object, *rest: object):
        seen.append(masks)
        return step(prev, state, memory, masks, *rest)

    model.decoder.step = spy  # type: ignore[method-assign]
    model(src, lengths, tgt, pr_force=0.5)
    assert len(seen) == 3 and seen[0] is not None and all(m is seen[0] for m in seen)
    masks = seen[0]
    assert isinstance(masks, DropMasks)
    assert masks.rows is not None and masks.rows.shape == (11, 1)
    assert masks.inputs is not None and masks.inputs.shape == (3, 1, 20)  # emb + fed state
    assert masks.outputs is not None and masks.outputs.shape == (3, 1, 10)
    assert [m.shape for m in masks.between if m is not None] == [(3, 1, 10)]
    assert isinstance(masks.weights, list) and len(masks.weights) == 2  # one per layer
    model(src, lengths, tgt, pr_force=0.5)
    assert seen[3] is not seen[0]
    assert not torch.equal(seen[3].rows, masks.rows)  # type: ignore[union-attr]
    for before, after in zip(masks.weights, seen[3].weights, strict=True):  # type: ignore[arg-type]
        assert before.keys() == after.keys()  # DropConnect: new hidden-to-hidden masks too
        assert all(not torch.equal(before[k], after[k]) for k in before)


def test_weight_drop_on_a_fused_rnn_is_drawn_anew_for_each_batch() -> None:
    model = make(enc_weight_drop=0.5).train()
    assert isinstance(model.encoder.rnn, nn.GRU)  # no dropout between layers: one fused call
    enc = model.encoder
    first, second = (
        DropMasks.draw(enc.reg, enc.embedding, enc.rnn, 3, enc.embedding.embedding_dim,
                       enc.output_size)
        for _ in range(2)
    )  # fmt: skip
    assert isinstance(first.weights, dict) and isinstance(second.weights, dict)
    assert first.weights.keys() == second.weights.keys()
    assert len(first.weights) == enc.rnn.num_layers * enc.directions  # every weight_hh
    assert all(not torch.equal(first.weights[k], second.weights[k]) for k in first.weights)


def test_training_outputs_vary_per_batch_and_eval_is_deterministic() -> None:
    model = make(**ALL_ON, attention_style="output")
    src, lengths, tgt = batch()
    model.train()
    a, _ = model(src, lengths, tgt, pr_force=1.0)
    b, _ = model(src, lengths, tgt, pr_force=1.0)
    assert not torch.allclose(a, b)
    model.eval()
    with torch.no_grad():
        c, _ = model(src, lengths, tgt, pr_force=1.0)
        d, _ = model(src, lengths, tgt, pr_force=1.0)
    assert torch.equal(c, d)


@pytest.mark.parametrize("style", ["lesson", "output", "input_feeding"])
def test_every_regulariser_is_the_identity_in_eval_mode(style: str) -> None:
    """All switches on except between-layer locked dropout (which changes the RNN's layout) give
    the plain net's outputs in eval mode, with the plain net's state dict."""
    on = {k: v for k, v in ALL_ON.items() if "locked_hidden" not in k}
    regularised, plain = make(**on, attention_style=style), make(attention_style=style)
    assert regularised.state_dict().keys() == plain.state_dict().keys()
    regularised.load_state_dict(plain.state_dict())
    src, lengths, tgt = batch()
    with torch.no_grad():
        for pr_force in (1.0, 0.0):
            want, _ = plain.eval()(src, lengths, tgt, pr_force=pr_force)
            got, _ = regularised.eval()(src, lengths, tgt, pr_force=pr_force)
            assert torch.equal(got, want)


def test_locked_dropout_between_layers_is_the_identity_in_eval_mode() -> None:
    """The layer-by-layer RNN it needs, with the plain net's weights, gives its outputs."""
    import re

    def layered(key: str) -> str:
        """``encoder.rnn.weight_hh_l1_reverse`` -> ``encoder.rnn.1.weight_hh_l0_reverse``."""
        m = re.fullmatch(r"(.*\.rnn)\.(weight|bias)_(ih|hh)_l(\d+)(_reverse)?", key)
        return f"{m[1]}.{m[4]}.{m[2]}_{m[3]}_l0{m[5] or ''}" if m else key

    regularised = make(enc_locked_hidden=0.4, dec_locked_hidden=0.4)
    plain = make()
    assert isinstance(regularised.encoder.rnn, LayeredRNN)
    regularised.load_state_dict({layered(k): v for k, v in plain.state_dict().items()})
    src, lengths, tgt = batch()
    with torch.no_grad():
        for pr_force in (1.0, 0.0):
            want, _ = plain.eval()(src, lengths, tgt, pr_force=pr_force)
            got, _ = regularised.eval()(src, lengths, tgt, pr_force=pr_force)
            assert torch.allclose(got, want, atol=1e-6)


def test_the_training_loss_is_the_smoothed_cross_entropy_plus_ar_tar() -> None:
    from lit_seq2seq.dataset import Batch
    from lit_seq2seq.module import Seq2SeqModule
    from lit_seq2seq.vocab import SPECIALS

    words = lambda n: [*SPECIALS, *(f"w{i}" for i in range(n - len(SPECIALS)))]  # noqa: E731
    info = {"src_vocab": words(13), "tgt_vocab": words(11), "src_lang": "fr", "lowercase": True,
            "detokenizer": None}  # fmt: skip
    module = Seq2SeqModule({**SMALL, **ALL_ON}, label_smoothing=0.1, translation=info)
    module.pr_force = 1.0
    src, lengths, tgt = batch()
    one = Batch(src, lengths, tgt, (tgt != 1).sum(1), None)
    torch.manual_seed(3)
    loss = module.training_step(one, 0)
    torch.manual_seed(3)  # the same masks again, by hand
    trace: list[tuple[torch.Tensor, torch.Tensor]] = []
    logits, _ = module.net(src, lengths, tgt, pr_force=1.0, trace=trace)  # type: ignore[misc]
    ce = nn.functional.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=1,
                                     label_smoothing=0.1)  # fmt: skip
    penalty = module.net.activation_penalty(trace, tgt != 1)  # type: ignore[union-attr]
    assert penalty.item() > 0
    assert loss.item() == pytest.approx((ce + penalty).item(), rel=1e-6)


def test_all_switches_off_draw_no_masks_and_keep_the_fused_rnn() -> None:
    model = make().train()
    assert isinstance(model.encoder.rnn, nn.GRU) and isinstance(model.decoder.rnn, nn.GRU)
    assert model.decoder.draw_masks(3) is None
    layered = make(enc_locked_hidden=0.2)
    assert isinstance(layered.encoder.rnn, LayeredRNN) and isinstance(layered.decoder.rnn, nn.GRU)


def test_activation_penalty_exact_values_on_a_hand_made_case() -> None:
    raw = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [9.0, 9.0]],
                        [[0.0, 1.0], [1.0, 1.0], [2.0, 3.0]]])  # fmt: skip
    dropped = raw * torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]]])  # locked: one mask per sentence
    real = torch.tensor([[True, True, False], [True, True, True]])  # sentence 0 has 2 tokens
    # AR: squares of the dropped outputs at the 5 real positions, 2 units each:
    # sentence 0: (2)^2 + (6)^2 = 40; sentence 1: (2)^2 + (2)^2 + (6)^2 = 44 -> 84 / 10
    ar = activation_penalty(raw, dropped, real, alpha=2.0, beta=0.0)
    assert ar.item() == pytest.approx(2.0 * 84 / 10)
    # TAR: steps t >= 1 at real positions: (0, 1), (1, 1), (1, 2) -> squared differences
    # (3-1)^2 + (0-2)^2 = 8; (1-0)^2 + (1-1)^2 = 1; (2-1)^2 + (3-1)^2 = 5 -> 14 / (3 * 2)
    tar = activation_penalty(raw, dropped, real, alpha=0.0, beta=1.0)
    assert tar.item() == pytest.approx(14 / 6)
    both = activation_penalty(raw, dropped, real, alpha=2.0, beta=1.0)
    assert both.item() == pytest.approx(2.0 * 84 / 10 + 14 / 6)
    assert activation_penalty(raw, dropped, real, 0.0, 0.0).item() == 0.0
    with pytest.raises(InputError, match="must agree on"):
        activation_penalty(raw, dropped, real[:, :2], 1.0, 1.0)


@pytest.mark.parametrize("style", ["output", "input_feeding"])
def test_forward_traces_the_decoder_outputs_for_ar_tar(style: str) -> None:
    model = make(dec_locked_out=0.5, ar_alpha=2.0, tar_beta=1.0, attention_style=style).train()
    src, lengths, tgt = batch()
    trace: list[tuple[torch.Tensor, torch.Tensor]] = []
    model(src, lengths, tgt, pr_force=1.0, trace=trace)
    ((raw, dropped),) = trace
    assert raw.shape == dropped.shape == (3, 3, 10)
    zero = dropped == 0
    assert torch.allclose(dropped[~zero], raw[~zero] * 2.0)
    assert (zero == zero[:, :1]).all()  # locked: the same units dropped at every step
    penalty = model.activation_penalty(trace, tgt != 1)
    assert penalty.item() > 0 and penalty.requires_grad


def test_rates_out_of_range_are_refused() -> None:
    with pytest.raises(InputError, match=r"enc_weight_drop=1\.0 is out of range"):
        Seq2SeqConfig(enc_weight_drop=1.0)
    with pytest.raises(InputError, match=r"ar_alpha=-1\.0 is out of range"):
        Seq2SeqConfig(ar_alpha=-1.0)
