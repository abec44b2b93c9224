"""Unit tests of Informer's parts: ProbSparse attention, distilling, one-shot decoder, causality, marks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptcast.forecast import create_forecaster, load_forecaster
from adaptcast.forecast.models.informer import PAPER_SIZES, DistilLayer, InformerNet
from adaptcast.forecast.nn.attention import AttentionLayer, FullAttention, ProbSparseAttention
from adaptcast.forecast.nn.calendar import calendar_marks, stamp_fields, step_marks

torch.set_num_threads(1)


def _qkv(B=2, H=3, L=20, S=None, E=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = L if S is None else S
    return (
        torch.randn(B, H, L, E, generator=g),
        torch.randn(B, H, S, E, generator=g),
        torch.randn(B, H, S, E, generator=g),
    )


def _reference(q, k, v, causal):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if causal:
        mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, -1) @ v


@pytest.mark.parametrize("causal", [False, True])
def test_probsparse_with_all_queries_and_all_keys_is_full_attention(causal):
    q, k, v = _qkv(L=20)
    prob = ProbSparseAttention(factor=100, causal=causal).eval()
    u, n_sample = prob.sizes(20, 20)
    assert (u, n_sample) == (20, 20)  # u = L and every key sampled
    out = prob(q, k, v)
    torch.testing.assert_close(out, _reference(q, k, v, causal), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, FullAttention(causal=causal).eval()(q, k, v), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_probsparse_with_all_queries_has_full_attention_gradients(causal):
    """The measurement runs without gradient; the active rows must still carry full attention's gradient."""
    q, k, v = (t.requires_grad_() for t in _qkv(L=20))
    ProbSparseAttention(factor=100, causal=causal).train()(q, k, v).pow(2).sum().backward()
    got = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    _reference(q, k, v, causal).pow(2).sum().backward()
    for g, t in zip(got, (q, k, v), strict=False):
        torch.testing.assert_close(g, t.grad, rtol=1e-4, atol=1e-5)


def test_probsparse_cross_attention_all_keys_matches_full():
    q, k, v = _qkv(L=12, S=30)
    out = ProbSparseAttention(factor=100).eval()(q, k, v)
    torch.testing.assert_close(out, _reference(q, k, v, False), rtol=1e-5, atol=1e-5)


def _lazy_value(v, causal, reference):
    """Uniform attention over the admissible keys; the authors' code sums, not averages, under the mask."""
    if not causal:
        return v.mean(2, keepdim=True).expand_as(v)
    counts = 1.0 if reference else torch.arange(1, v.shape[2] + 1, dtype=v.dtype).unsqueeze(-1)
    return v.cumsum(2) / counts


@pytest.mark.parametrize("causal, reference", [(False, False), (True, False), (True, True)])
def test_probsparse_lazy_queries_get_the_mean_of_the_values_they_may_see(causal, reference):
    q, k, v = _qkv(L=96, E=16)
    prob = ProbSparseAttention(factor=2, causal=causal, reference_measure=reference).eval()
    u, n_sample = prob.sizes(96, 96)
    assert (u, n_sample) == (10, 10)
    out = prob(q, k, v)
    full = _reference(q, k, v, causal)
    lazy_value = _lazy_value(v, causal, reference)
    is_active = torch.isclose(out, full, atol=1e-5).all(-1)
    is_lazy = torch.isclose(out, lazy_value, atol=1e-5).all(-1)
    assert bool((is_active | is_lazy).all())  # every row is either full attention or the lazy value
    assert (is_active & ~is_lazy).sum(-1).max() <= u
    assert int((~is_lazy).sum(-1).min()) >= 1


def test_probsparse_fast_and_gather_routes_agree():
    """Scores taken from one Q·Kᵀ product or from gathered sampled keys: the same maths."""
    torch.manual_seed(0)
    q, k, v = _qkv(L=300, E=2)  # L_K > n_sample·E → the gather route
    prob = ProbSparseAttention(factor=5).eval()
    slow = prob(q, k, v)
    q2, k2 = (
        torch.cat([q, torch.zeros_like(q).repeat(1, 1, 1, 200)], -1),
        torch.cat([k, torch.zeros_like(k).repeat(1, 1, 1, 200)], -1),
    )
    fast = prob(
        q2, k2, v
    )  # same dot products, E large → the Q·Kᵀ route; scale differs, so compare selections
    lazy = v.mean(2, keepdim=True).expand_as(v)
    assert torch.equal(
        torch.isclose(slow, lazy, atol=1e-6).all(-1), torch.isclose(fast, lazy, atol=1e-6).all(-1)
    )


def test_probsparse_is_deterministic_in_eval_mode():
    q, k, v = _qkv(L=96, E=16)
    prob = ProbSparseAttention(factor=2).eval()
    torch.testing.assert_close(prob(q, k, v), prob(q, k, v), rtol=0, atol=0)


@pytest.mark.parametrize("L", [96, 95, 48, 7])
def test_distilling_halves_the_length(L):
    layer = DistilLayer(16)
    out = layer(torch.randn(3, L, 16))
    assert out.shape == (3, (L + 1) // 2, 16)


def _net(**kw):
    args = dict(label_len=8, d_model=16, n_heads=2, d_ff=32, e_layers=3, d_layers=2, factor=2, dropout=0.0)
    args.update(kw)
    return InformerNet(32, 6, 3, 2, **args).eval()


def test_encoder_length_halves_per_distilling_layer_and_not_without():
    x = torch.randn(2, 32, 3)
    assert _net().encode(x).shape == (2, 8, 16)  # 32 → 16 → 8
    assert _net(distil=False).encode(x).shape == (2, 32, 16)


def test_decoder_emits_whole_horizon_in_one_pass():
    net = _net()
    calls = []
    net.decoder.register_forward_hook(lambda m, inp, out: calls.append((inp[0].shape, out.shape)))
    for layer in net.decoder.layers:
        layer.register_forward_hook(lambda m, inp, out: calls.append("layer"))
    y = net(torch.randn(4, 32, 3))
    assert y.shape == (4, 6, 2)
    assert calls.count("layer") == 2  # each decoder layer ran exactly once
    ((dec_in, dec_out),) = [c for c in calls if c != "layer"]
    assert dec_in == (4, 8 + 6, 16)  # start token + all horizon placeholders in
    assert dec_out == (4, 6, 2)  # the placeholders' forecasts out: the start token's rows are not computed


@pytest.mark.parametrize("attention", ["full", "prob"])
def test_decoder_self_attention_is_causal(attention):
    """Changing decoder input after position t leaves the outputs at positions <= t unchanged."""
    torch.manual_seed(0)
    net = _net(attention=attention, factor=100 if attention == "prob" else 2)  # prob: u = L, all keys
    memory = torch.randn(2, 8, 16)
    dec = torch.randn(2, 14, 16)
    t = 9
    changed = dec.clone()
    changed[:, t + 1 :] = torch.randn(2, 14 - t - 1, 16) * 5
    with torch.no_grad():
        a, b = net.decoder(dec, memory), net.decoder(changed, memory)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])  # the test can see a change


def test_mixed_head_merge_reads_head_major_rows():
    """mix=True (the authors' decoder quirk): one head is the usual merge; with several heads row l
    of the merged output holds consecutive positions of one head, so outputs differ from mix=False."""
    torch.manual_seed(0)
    x = torch.randn(2, 12, 16)
    for heads, same in ((1, True), (4, False)):
        plain = AttentionLayer(FullAttention(), 16, heads)
        mixed = AttentionLayer(FullAttention(), 16, heads, mix=True)
        mixed.load_state_dict(plain.state_dict())
        with torch.no_grad():
            a, b = plain(x, x, x), mixed(x, x, x)
        assert torch.allclose(a, b, atol=1e-6) == same
    captured = {}
    mixed.out_proj.register_forward_hook(lambda m, inp, out: captured.setdefault("merged", inp[0]))
    with torch.no_grad():
        mixed(x, x, x)
        heads_out = mixed.inner(
            *(mixed._heads(p(x)) for p in (mixed.q_proj, mixed.k_proj, mixed.v_proj))
        )  # [B, H, L, E]
    # merged row 0 = head 0 at positions 0..3 (E = 4, so 4 positions fill one 16-wide row)
    torch.testing.assert_close(captured["merged"][:, 0], heads_out[:, 0, :4].reshape(2, 16))


def test_informer_with_mixed_decoder_heads_fits_and_predicts():
    rng = np.random.default_rng(0)
    X, Y = (
        rng.standard_normal((40, 16, 2)).astype(np.float32),
        rng.standard_normal((40, 4, 2)).astype(np.float32),
    )
    model = create_forecaster(
        "informer",
        lookback=16,
        horizon=4,
        n_features=2,
        n_targets=2,
        mix=True,
        d_model=16,
        n_heads=4,
        d_ff=32,
        epochs=1,
        batch_size=8,
    )
    model.fit(X, Y)
    assert model.module.decoder.layers[0].self_attn.mix and not model.module.decoder.layers[0].cross_attn.mix
    assert not model.module.encoder.layers[0].attn.mix
    assert model.predict(X[:3]).shape == (3, 4, 2)


def test_sparse_causal_attention_reads_no_future_values():
    """With u < L a later position can only switch an earlier query between its two causal outputs."""
    torch.manual_seed(0)
    q, k, v = _qkv(L=64, E=16)
    prob = ProbSparseAttention(factor=2, causal=True).eval()
    t = 40
    q2, k2, v2 = (z.clone() for z in (q, k, v))
    for z in (q2, k2, v2):
        z[:, :, t + 1 :] = torch.randn_like(z[:, :, t + 1 :]) * 5
    out = prob(q2, k2, v2)[:, :, : t + 1]
    full = _reference(q, k, v, True)[:, :, : t + 1]
    lazy = _lazy_value(v, True, False)[:, :, : t + 1]
    ok = torch.isclose(out, full, atol=1e-5).all(-1) | torch.isclose(out, lazy, atol=1e-5).all(-1)
    assert bool(ok.all())


def test_step_marks_continue_the_calendar():
    ts = np.datetime64("2017-06-29T20:00") + np.arange(900) * np.timedelta64(1, "h")
    marks = calendar_marks(ts, "h")
    fut = step_marks(torch.from_numpy(marks[95:96]), 720, "h")[0].numpy()
    np.testing.assert_allclose(fut, marks[96:816], atol=1e-6)
    ts = np.datetime64("2018-12-31T23:45") + np.arange(200) * np.timedelta64(15, "m")
    marks = calendar_marks(ts, "15min")
    np.testing.assert_allclose(
        step_marks(torch.from_numpy(marks[:1]), 150, "15min")[0].numpy(), marks[1:151], atol=1e-6
    )


def _series(n=400, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2017-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    hour = (np.arange(n) % 24) / 24
    y = np.sin(2 * np.pi * hour)[:, None] + 0.1 * rng.standard_normal((n, 2))
    return np.concatenate([y, calendar_marks(ts, "h")], axis=1).astype(np.float32)


TINY = dict(
    d_model=16,
    n_heads=2,
    d_ff=32,
    e_layers=2,
    d_layers=1,
    factor=3,
    epochs=2,
    batch_size=32,
    accelerator="cpu",
)


def test_forecaster_with_time_features_fits_predicts_and_round_trips(tmp_path):
    from adaptcast.forecast.windows import sliding_windows

    X, Y = sliding_windows(_series(), 24, 6, n_targets=2)
    model = create_forecaster(
        "informer", lookback=24, horizon=6, n_features=6, n_targets=2, time_features=4, freq="h", **TINY
    )
    report = model.fit(X[:300], Y[:300], val=(X[300:], Y[300:]))
    assert report.epochs >= 1
    assert model.module.mark_scale.abs().min() > 0 and not torch.allclose(
        model.module.mark_scale, torch.ones(4)
    )
    pred = model.predict(X[300:])
    assert pred.shape == (X.shape[0] - 300, 6, 2)
    back = load_forecaster(model.save(tmp_path / "inf"))
    np.testing.assert_array_equal(back.predict(X[300:]), pred)
    assert model.embed(X[:5]).shape == (5, 16)


def test_forecaster_rejects_bad_time_feature_settings():
    with pytest.raises(ValueError, match="time_features"):
        create_forecaster("informer", lookback=24, horizon=6, n_features=5, n_targets=2, time_features=4)
    with pytest.raises(ValueError, match="calendar marks"):
        create_forecaster(
            "informer", lookback=24, horizon=6, n_features=7, n_targets=2, time_features=5, freq="h"
        )
    with pytest.raises(ValueError, match="label_len"):
        create_forecaster("informer", lookback=24, horizon=6, label_len=30)


@pytest.mark.parametrize(
    "reference_code, expected", [(False, [1e-4, 5e-5, 2.5e-5]), (True, [1e-4, 1e-4, 5e-5])]
)
def test_lr_is_halved_each_epoch(reference_code, expected):
    """The paper halves its lr from the second epoch; the authors' code (reference_code) from the third."""
    model = create_forecaster(
        "informer", lookback=24, horizon=6, reference_code=reference_code, **TINY, lr=PAPER_SIZES["lr"]
    )
    opt, sched = model.configure_optimizer([torch.nn.Parameter(torch.zeros(1))])
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expected)


@pytest.mark.parametrize("causal", [False, True])
def test_reference_measure_divides_the_sampled_sum_by_L_K(causal):
    q, k, _ = _qkv(L=40)
    paper, ref = (
        ProbSparseAttention(factor=2, causal=causal, reference_measure=r).eval() for r in (False, True)
    )
    n = paper.sizes(40, 40)[1]
    assert n < 40  # sampled, not exact
    mask = torch.ones(40, 40, dtype=torch.bool).triu(1) if causal else None
    for prob in (paper, ref):
        idx = prob._sample_keys(40, 40, n, q.device)  # eval: the same fixed-seed draw as inside measure()
        sampled = (q @ k.transpose(-2, -1)).gather(-1, idx.expand(2, 3, 40, n))
        centre = sampled.sum(-1) / 40 if prob.reference_measure else sampled.mean(-1)
        torch.testing.assert_close(prob.measure(q, k, n, mask), sampled.amax(-1) - centre)
        if causal:  # the paper's causal sample never looks ahead; the authors' code samples every key
            assert (idx > torch.arange(40).unsqueeze(1)).any().item() == prob.reference_measure


def test_reference_code_switches_the_authors_code_paths_on():
    paper = create_forecaster("informer", lookback=24, horizon=6, **TINY).build_module()
    ref = create_forecaster(
        "informer", lookback=24, horizon=6, reference_code=True, **{**TINY, "dropout": 0.1}
    ).build_module()
    for net, on in ((paper, False), (ref, True)):
        enc, dec = net.encoder.layers[0].attn, net.decoder.layers[0]
        assert dec.self_attn.mix == on and not dec.cross_attn.mix and not enc.mix
        for inner in (enc.inner, dec.self_attn.inner):
            assert inner.reference_measure == on
    assert (
        ref.encoder.layers[0].attn.inner.dropout == 0.0
        and ref.decoder.layers[0].cross_attn.inner.dropout == 0.1
    )


def test_calendar_marks_match_the_shared_time_features():
    from adaptcast.forecast.data import time_features

    ts = np.datetime64("2016-02-27T00:00") + np.arange(24 * 400) * np.timedelta64(1, "h")
    np.testing.assert_allclose(calendar_marks(ts, "h"), time_features(ts), atol=1e-6)


@pytest.mark.parametrize(
    "start, step, freq",
    [("2015-12-30T00:00", 1, "h"), ("2019-12-31T22:00", 1, "h"), ("2020-02-27T00:00", 15, "15min")],
)
def test_stamp_fields_decode_the_calendar_including_the_month(start, step, freq):
    unit = "h" if freq == "h" else "m"
    ts = np.datetime64(start) + np.arange(24 * 800 // step) * np.timedelta64(step, unit)
    fields = {k: v.numpy() for k, v in stamp_fields(torch.from_numpy(calendar_marks(ts, freq)), freq).items()}
    months = ts.astype("datetime64[M]")
    np.testing.assert_array_equal(fields["month"], months.astype(np.int64) % 12)
    np.testing.assert_array_equal(
        fields["day"], (ts.astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64)
    )
    np.testing.assert_array_equal(fields["weekday"], (ts.astype("datetime64[D]").astype(np.int64) + 3) % 7)
    np.testing.assert_array_equal(fields["hour"], ts.astype("datetime64[h]").astype(np.int64) % 24)
    assert ("minute" in fields) == (freq != "h")


@pytest.mark.parametrize("time_embedding", ["learned", "fixed", "none"])
def test_time_embedding_variants(time_embedding):
    """Stamp embeddings read the marks (learned tables train); "none" ignores them."""
    from adaptcast.forecast.windows import sliding_windows

    X, Y = sliding_windows(_series(200), 24, 6, n_targets=2)
    model = create_forecaster(
        "informer",
        lookback=24,
        horizon=6,
        n_features=6,
        n_targets=2,
        time_features=4,
        time_embedding=time_embedding,
        **{**TINY, "epochs": 1, "dropout": 0.0},
    )
    model.fit(X, Y)
    net = model.module
    shifted = X.copy()
    shifted[:, :, 2:] = np.roll(X[:, :, 2:], 5, axis=0)  # same values, marks of other hours
    moved = not np.allclose(model.predict(shifted), model.predict(X), atol=1e-6)
    assert moved == (time_embedding != "none")
    if time_embedding == "learned":
        table = net.enc_embedding.temporal.tables["hour"].weight
        torch.manual_seed(model.seed)  # fit seeds torch the same way before it builds the network
        initial = model.build_module().enc_embedding.temporal.tables["hour"].weight
        torch.manual_seed(model.seed)
        torch.testing.assert_close(model.build_module().enc_embedding.temporal.tables["hour"].weight, initial)
        assert not torch.allclose(table, initial)
    with pytest.raises(ValueError, match="time_embedding"):
        create_forecaster("informer", lookback=24, horizon=6, time_embedding="sinusoid")


@pytest.mark.parametrize("mix", [False, True])
def test_decoder_rows_equal_the_last_rows_of_the_whole_decoder(mix):
    """The last decoder layer computes only the forecast rows: same values and gradients as slicing."""
    torch.manual_seed(0)
    net = InformerNet(24, 6, 2, 2, label_len=12, d_model=16, n_heads=2, d_ff=32, d_layers=2, mix=mix).eval()
    h = torch.randn(3, 18, 16, requires_grad=True)
    memory = torch.randn(3, 12, 16, requires_grad=True)
    whole = net.decoder(h, memory)[:, -6:]
    whole.square().sum().backward()
    grads = [h.grad.clone(), memory.grad.clone()]
    h.grad = memory.grad = None
    rows = net.decoder(h, memory, rows=6)
    rows.square().sum().backward()
    torch.testing.assert_close(rows, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h.grad, grads[0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(memory.grad, grads[1], rtol=1e-4, atol=1e-6)
