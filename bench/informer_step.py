"""Where an Informer training step spends its time, by part, in fp32 and bf16 autocast (JSON).

Times forward + backward of each part of the network on the shapes it sees inside one step
(batch 32, the paper's ETTh1 univariate input by default: seq_len 720, label_len 168,
horizon 24), then the whole step with the optimiser, and one epoch of batches from the data
loader alone. Each number is the median of ``--repeats`` runs after a warm-up; ratios compare
parts to the whole step measured in the same process.

    python bench/informer_step.py                       # seq_len 720 / label_len 168 / horizon 24
    python bench/informer_step.py --seq-len 96 --label-len 48 --precision fp32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see informer_ett.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile(args: argparse.Namespace, precision: str) -> dict:
    import numpy as np
    import torch
    from torch.nn import functional as F

    from adaptcast.forecast.models.informer import InformerNet
    from adaptcast.forecast.training import WindowData

    torch.manual_seed(0)
    B, L, lab, H = args.batch_size, args.seq_len, args.label_len, args.horizon
    net = InformerNet(L, H, 1, 1, label_len=lab, n_marks=4, factor=args.factor).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    x, y = torch.randn(B, L, 5), torch.randn(B, H, 1)
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
            fwd_bwd(net.enc_embedding, x[..., :1], x[..., 1:])(),
            fwd_bwd(net.dec_embedding, *net.decoder_inputs(x))(),
        ),
        "encoder layer 1: ProbSparse attention": fwd_bwd(lambda t: enc0.attn(t, t, t), h_enc),
        "encoder layer 1: feed-forward": fwd_bwd(enc0.ff, h_enc),
        "distilling conv (conv-BN-ELU-pool)": fwd_bwd(net.encoder.distils[0], h_enc)
        if net.encoder.distils
        else None,
        "decoder (self + cross attention, FFN, projection)": fwd_bwd(net.decoder, h_dec, memory),
    }

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = net(x)
        F.mse_loss(out.float(), y).backward()
        opt.step()

    result = {
        name: round(median_seconds(fn, args.repeats), 4) for name, fn in parts.items() if fn is not None
    }
    whole = median_seconds(step, args.repeats)
    # data loading: one epoch of shuffled batches from the loader ``fit`` trains on
    n = args.train_windows
    windows = np.random.default_rng(0).standard_normal((n, L, 5)).astype(np.float32)
    loader = WindowData(windows, np.zeros((n, H, 1), np.float32), None, B, seed=0).train_dataloader()
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
    ap.add_argument("--seq-len", type=int, default=720)
    ap.add_argument("--label-len", type=int, default=168)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--factor", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--train-windows",
        type=int,
        default=7897,
        help="windows per epoch (ETTh1 univariate, seq 720, h24: 7897)",
    )
    ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    import torch

    from adaptcast.forecast.threads import set_torch_threads

    set_torch_threads(args.threads)
    precisions = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
    out: dict = {
        "config": {k: v for k, v in vars(args).items() if k not in ("precision", "repeats")},
        "threads": torch.get_num_threads(),
        "bf16_supported": bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        ),
    }
    for p in precisions:
        out[p] = profile(args, p)
    if len(precisions) == 2:
        out["bf16_speedup"] = round(out["fp32"]["seconds_per_step"] / out["bf16"]["seconds_per_step"], 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
