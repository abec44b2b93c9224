"""Where an Informer training step spends its time, and how fast it is against an older revision (JSON).

Two input shapes from the paper's ETTh1 setup, both batch 32, paper sizes (d_model 512, 8 heads,
d_ff 2048), 4 calendar marks:

* ``--shape multivariate``: 7 channels, seq_len 96, label_len 48, horizon 24;
* ``--shape univariate``: 1 channel, seq_len 720, label_len 168, horizon 24.

For the current code it times forward + backward of each part of the network on the shapes it
sees inside one step, the whole step with the optimiser, and one epoch of batches from the data
loader alone. ``--baseline REV`` also builds the network of git revision ``REV`` (its
``informer.py`` and ``attention.py`` loaded into temporary modules), gives it the same weights,
checks that both compute the same forecasts and gradients (eval mode: no dropout, fixed key
sample), and times both steps alternately in this one process. Each time is a median of
``--repeats`` runs after a warm-up.

Precision: ``fp32``; ``bf16`` (autocast) only on a CPU with native bf16 instructions
(:func:`forecast.training.cpu_precision`); elsewhere it is reported as skipped, because emulated
bf16 was 25x slower than fp32 on an AVX2 EPYC.

    python bench/informer_step.py --baseline d1b6701 --precision fp32 --threads 1
    python bench/informer_step.py --shape univariate --precision fp32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see informer_ett.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {
    "multivariate": {"seq_len": 96, "label_len": 48, "horizon": 24, "channels": 7, "train_windows": 8521},
    "univariate": {"seq_len": 720, "label_len": 168, "horizon": 24, "channels": 1, "train_windows": 7897},
}
N_MARKS = 4
ATTENTION = "adaptcast.forecast.nn.attention"


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def revision_network(rev: str) -> type:
    """``InformerNet`` as of git revision ``rev``, in temporary modules (the registry is left alone)."""
    from adaptcast.forecast.base import FORECASTERS

    def load(path: str, name: str) -> types.ModuleType:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
        ).stdout
        module = types.ModuleType(name)
        module.__file__ = f"{rev}:{path}"
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        return module

    attention = load("forecast/nn/attention.py", "_informer_step_before_attention")
    current, registered = sys.modules[ATTENTION], FORECASTERS.get("informer")
    sys.modules[ATTENTION] = attention  # the old informer.py imports make_attention from here
    try:
        informer = load("forecast/models/informer.py", "_informer_step_before_informer")
    finally:
        sys.modules[ATTENTION] = current
        if registered is not None:
            FORECASTERS["informer"] = registered
    return informer.InformerNet


def build(net_cls: type, shape: dict, factor: int):
    return net_cls(
        shape["seq_len"],
        shape["horizon"],
        shape["channels"],
        shape["channels"],
        label_len=shape["label_len"],
        n_marks=N_MARKS,
        factor=factor,
    )


def inputs(shape: dict, batch: int):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, shape["seq_len"], shape["channels"] + N_MARKS, generator=g)
    y = torch.randn(batch, shape["horizon"], shape["channels"], generator=g)
    return x, y


def make_step(net, x, y, precision: str):
    import torch
    from torch.nn import functional as F

    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = net(x)
        F.mse_loss(out.float(), y).backward()
        opt.step()

    return step


def same_maths(old, new, x, y) -> dict:
    """Max |difference| of eval-mode forecasts and of every parameter's gradient, same weights."""
    from torch.nn import functional as F

    grads = []
    for net in (old, new):
        net.eval().zero_grad(set_to_none=True)
        out = net(x)
        F.mse_loss(out, y).backward()
        grads.append((out.detach(), {k: p.grad for k, p in net.named_parameters() if p.grad is not None}))
    (out_old, g_old), (out_new, g_new) = grads
    assert g_old.keys() == g_new.keys(), "the two revisions train different parameters"
    for net in (old, new):
        net.zero_grad(set_to_none=True)
        net.train()
    return {
        "forecast_max_abs_diff": float((out_old - out_new).abs().max()),
        "forecast_max_abs": float(out_old.abs().max()),
        "grad_max_abs_diff": max(float((g_old[k] - g_new[k]).abs().max()) for k in g_old),
        "grad_max_abs": max(float(g.abs().max()) for g in g_old.values()),
    }


def compare(args: argparse.Namespace, shape: dict, precision: str) -> dict:
    """Old and new step alternately, same weights and batch: medians, ratio, per-pair ratio range."""
    import torch

    from adaptcast.forecast.models.informer import InformerNet

    torch.manual_seed(0)
    new = build(InformerNet, shape, args.factor).train()
    old = build(revision_network(args.baseline), shape, args.factor).train()
    old.load_state_dict(new.state_dict())
    x, y = inputs(shape, args.batch_size)
    check = same_maths(old, new, x, y)
    steps = {"before": make_step(old, x, y, precision), "after": make_step(new, x, y, precision)}
    for fn in steps.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ratios = sorted(a / b for a, b in zip(times["after"], times["before"], strict=True))
    before, after = (statistics.median(times[k]) for k in ("before", "after"))
    return {
        "baseline": args.baseline,
        "same_maths": check,
        "before_seconds_per_step": round(before, 4),
        "after_seconds_per_step": round(after, 4),
        "after_over_before": round(after / before, 3),
        "faster_percent": round(100 * (1 - after / before), 1),
        "pair_ratio_min_median_max": [
            round(ratios[0], 3),
            round(statistics.median(ratios), 3),
            round(ratios[-1], 3),
        ],
        "repeats": args.repeats,
    }


def profile(args: argparse.Namespace, shape: dict, precision: str) -> dict:
    import numpy as np
    import torch

    from adaptcast.forecast.lightning_fit import WindowData
    from adaptcast.forecast.models.informer import InformerNet

    torch.manual_seed(0)
    B, L, lab, H, C = (
        args.batch_size,
        shape["seq_len"],
        shape["label_len"],
        shape["horizon"],
        shape["channels"],
    )
    net = build(InformerNet, shape, args.factor).train()
    x, y = inputs(shape, B)
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")  # noqa: E731

    def fwd_bwd(module, *inputs):
        def run():
            with autocast():
                out = module(*inputs)
            out.float().square().mean().backward()

        return run

    d = net.enc_embedding.token.out_channels
    h_enc = torch.randn(B, L, d, requires_grad=True)
    h_dec = torch.randn(B, lab + H, d, requires_grad=True)
    memory = torch.randn(B, -(-L // 2) if net.encoder.distils else L, d)
    enc0 = net.encoder.layers[0]
    parts = {
        "embedding (encoder + decoder)": lambda: (
            fwd_bwd(net.enc_embedding, x[..., :C], x[..., C:])(),
            fwd_bwd(net.dec_embedding, *net.decoder_inputs(x))(),
        ),
        "encoder layer 1: ProbSparse attention": fwd_bwd(lambda t: enc0.attn(t, t, t), h_enc),
        "encoder layer 1: feed-forward": fwd_bwd(enc0.ff, h_enc),
        "distilling conv (conv-BN-ELU-pool)": fwd_bwd(net.encoder.distils[0], h_enc)
        if net.encoder.distils
        else None,
        "decoder (self + cross attention, FFN, projection)": fwd_bwd(
            lambda h, m: net.decoder(h, m, rows=H), h_dec, memory
        ),
    }
    result = {
        name: round(median_seconds(fn, args.repeats), 4) for name, fn in parts.items() if fn is not None
    }
    whole = median_seconds(make_step(net, x, y, precision), args.repeats)
    # data loading: one epoch of shuffled batches from the loader ``fit`` trains on
    n = shape["train_windows"]
    windows = np.random.default_rng(0).standard_normal((n, L, C + N_MARKS)).astype(np.float32)
    loader = WindowData(windows, np.zeros((n, H, C), np.float32), None, B, seed=0).train_dataloader()
    t0 = time.perf_counter()
    for _ in loader:
        pass
    load_epoch = time.perf_counter() - t0
    steps = -(-n // B)
    return {
        "seconds_per_step": round(whole, 3),
        "seconds_per_epoch_estimate": round(whole * steps, 1),
        "parts_seconds": result,
        "parts_share_of_step": {k: round(v / whole, 3) for k, v in result.items()},
        "data_loading_seconds_per_epoch": round(load_epoch, 3),
        "data_loading_share": round(load_epoch / (whole * steps), 5),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="multivariate")
    ap.add_argument("--factor", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16", "both"),
        default="fp32",
        help="bf16 runs only on a CPU with native bf16; elsewhere it is reported as skipped",
    )
    ap.add_argument("--baseline", default=None, help="git revision to time against in this process")
    ap.add_argument("--no-parts", action="store_true", help="skip the per-part breakdown")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    import torch

    from adaptcast.forecast.threads import set_torch_threads
    from adaptcast.forecast.training import cpu_flags, cpu_precision

    set_torch_threads(args.threads)
    shape = SHAPES[args.shape]
    native_bf16 = cpu_precision() == "bf16-mixed"
    asked = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
    out: dict = {
        "config": {"shape": args.shape, **shape, "batch_size": args.batch_size, "factor": args.factor},
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16_flags": sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx")),
        "cpu_precision": cpu_precision(),
    }
    for p in asked:
        if p == "bf16" and not native_bf16:
            out[p] = (
                "skipped: this CPU has no native bf16 (avx512_bf16 / amx_bf16), autocast would emulate it"
            )
            continue
        out[p] = {} if args.no_parts else profile(args, shape, p)
        if args.baseline:
            out[p]["against_baseline"] = compare(args, shape, p)
    if all(isinstance(out.get(p), dict) and "seconds_per_step" in out[p] for p in ("fp32", "bf16")):
        out["bf16_speedup"] = round(out["fp32"]["seconds_per_step"] / out["bf16"]["seconds_per_step"], 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
