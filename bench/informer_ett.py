"""Informer on ETTh1 with the paper's protocol; prints our MSE/MAE beside the paper's (JSON).

Protocol (Zhou et al., AAAI 2021): train rows [0, 8640), validation [8640, 11520), test
[11520, 14400), the validation and test windows starting ``seq_len`` rows earlier; a
StandardScaler fitted on the training rows; MSE and MAE on that z-scored scale over every test
window; univariate = OT → OT, multivariate = all 7 → all 7; calendar marks (hour, weekday, day,
day-of-year) as time features (passed as 4 trailing channels of X, ``time_features=4``).

Each (mode, horizon, seed) runs in its own subprocess (so its peak memory is its own) and is
written to the results JSON as soon as it finishes; a later run skips finished entries
(``--force`` re-runs them), so the table can be filled over several runs. ``--seeds 0,1,2``
trains each row once per seed (keys ``mode/horizon`` and ``mode/horizon@seedN``) and the printed
table shows their mean; ``--jobs N`` trains N runs at once (on a GPU, which has room for several).

    python bench/informer_ett.py --device gpu                    # the whole table, the paper's inputs
    python bench/informer_ett.py --horizons 24,48 --device cpu --precision auto --epochs 2  # bf16 if native
    python bench/informer_ett.py --preset reference --horizons 24  # seq_len 96 / label_len 48 everywhere
    python bench/informer_ett.py --device gpu --precision bf16-mixed --seeds 0,1,2 --jobs 4 \
        --hparams '{"reference_code": true}' --out bench/results/informer_ett_gpu_refcode.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

# On a shared CPU, OpenMP threads that spin while waiting for a descheduled sibling burn CPU:
# measured on the 2-core box under load, 5.3 CPU-s per Informer step with the default policy vs
# 1.9 with passive waiting (same maths). Must be set before torch (OpenMP) is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
RESULTS = ROOT / "bench" / "results"
HORIZONS = (24, 48, 168, 336, 720)
MODES = ("univariate", "multivariate")
COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")

PAPER = {  # Informer, ETTh1, MSE / MAE (Table 1 univariate, Table 2 multivariate)
    "univariate": {
        24: (0.098, 0.247),
        48: (0.158, 0.319),
        168: (0.183, 0.346),
        336: (0.222, 0.387),
        720: (0.269, 0.435),
    },
    "multivariate": {
        24: (0.577, 0.549),
        48: (0.685, 0.625),
        168: (0.931, 0.752),
        336: (1.128, 0.873),
        720: (1.215, 0.896),
    },
}
# (seq_len, label_len, factor) per horizon in the paper's released ETTh1 scripts
PAPER_INPUTS = {
    "univariate": {
        24: (720, 168, 5),
        48: (720, 168, 5),
        168: (720, 336, 5),
        336: (720, 336, 5),
        720: (720, 336, 5),
    },
    "multivariate": {
        24: (48, 48, 3),
        48: (96, 48, 5),
        168: (168, 168, 5),
        336: (168, 168, 5),
        720: (336, 336, 5),
    },
}


def load_ett_rows(path: Path, mode: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """``(values [N, c], marks [N, 4], borders)`` through the shared loader (:mod:`forecast.data`).

    Multivariate keeps the CSV's column order (all seven are targets); univariate is OT alone.
    """
    from adaptcast.forecast.data import ett_borders, read_frame, time_features

    tf = read_frame(path, time_col="date", duplicates="error")
    cols = ["OT"] if mode == "univariate" else list(COLUMNS)
    missing = [c for c in cols if c not in tf.frame.columns]
    if missing:
        raise SystemExit(f"{path}: missing columns {missing}")
    values = tf.frame.select(cols).to_numpy().astype(np.float64)
    return values, time_features(tf.frame[tf.time_col]), ett_borders(tf)


def make_splits(path: Path, mode: str, seq_len: int, horizon: int):
    """Train/val/test windows on the z-scored scale (StandardScaler fitted on the training rows)."""
    from adaptcast.forecast.windows import sliding_windows

    values, marks, (b1, b2, b3) = load_ett_rows(path, mode)
    train = values[:b1]
    mean, std = train.mean(0), train.std(0)
    data = np.concatenate([(values - mean) / std, marks], axis=1).astype(np.float32)
    c = values.shape[1]
    out = {}
    for name, lo, hi in (("train", 0, b1), ("val", b1 - seq_len, b2), ("test", b2 - seq_len, b3)):
        out[name] = sliding_windows(data[lo:hi], seq_len, horizon, n_targets=c)
    return out, c


def run_precision(precision: str, device: str) -> str:
    """``auto`` on a CPU: bf16 autocast only where the processor has native bf16 (``cpu_precision``)."""
    from adaptcast.forecast.training import cpu_precision, resolve_accelerator

    if precision == "auto" and resolve_accelerator(device) == "cpu":
        return cpu_precision()
    return precision


def log_epochs(tag: str) -> None:
    """Print one line per finished epoch to stderr (progress of a long run, visible in the log)."""
    from adaptcast.forecast.lightning_fit import ForecastModule

    original = ForecastModule.on_train_epoch_end
    t0 = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        original(self)
        h = self.history[-1] if self.history else {}
        print(
            f"[informer_ett] {tag} epoch {len(self.history)}: train {h.get('train_loss', float('nan')):.4f} "
            f"val {h.get('val_loss', float('nan')):.4f}, {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    ForecastModule.on_train_epoch_end = on_train_epoch_end  # type: ignore[method-assign]


def peak_memory_mb(device: str) -> float:
    import torch

    if device == "gpu" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def run_one(args: argparse.Namespace, mode: str, horizon: int) -> dict:
    import torch

    from adaptcast.forecast import create_forecaster, metrics
    from adaptcast.forecast.models.informer import PAPER_SIZES
    from adaptcast.forecast.threads import set_torch_threads

    set_torch_threads(args.threads)
    if args.preset == "paper":
        seq_len, label_len, factor = PAPER_INPUTS[mode][horizon]
    else:
        seq_len, label_len, factor = 96, 48, 5
    seq_len = args.seq_len or seq_len
    label_len = args.label_len or label_len
    splits, c = make_splits(Path(args.data), mode, seq_len, horizon)
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = splits["train"], splits["val"], splits["test"]
    hp = dict(
        **PAPER_SIZES,
        label_len=label_len,
        factor=factor,
        epochs=args.epochs,
        batch_size=args.batch_size,
        accelerator=args.device if args.device != "gpu" else "gpu",
        time_features=4,
        freq="h",
        precision=run_precision(args.precision, args.device),
        max_minutes=args.max_minutes,
        num_threads=args.threads,
    )
    hp.update(json.loads(args.hparams))
    model = create_forecaster(
        "informer", lookback=seq_len, horizon=horizon, n_features=c + 4, n_targets=c, seed=args.seed, **hp
    )
    log_epochs(run_key(mode, horizon, args.seed))
    report = model.fit(Xtr, Ytr, val=(Xva, Yva))
    t0 = time.perf_counter()
    pred = model.predict(Xte)
    predict_s = time.perf_counter() - t0
    mse, mae = metrics.mse(Yte, pred), metrics.mae(Yte, pred)
    window_mean = np.repeat(Xte[:, :, :c].mean(axis=1, keepdims=True), horizon, axis=1)  # simple references
    last_value = np.repeat(Xte[:, -1:, :c], horizon, axis=1)
    paper_mse, paper_mae = PAPER[mode][horizon]
    steps = -(-Xtr.shape[0] // args.batch_size)
    return {
        "mode": mode,
        "horizon": horizon,
        "mse": round(mse, 4),
        "mae": round(mae, 4),
        "paper_mse": paper_mse,
        "paper_mae": paper_mae,
        "mse_vs_paper": round(mse / paper_mse, 3),
        "per_channel": {  # where the error is: MSE per target, and the mean level forecast vs observed
            "mse": [round(metrics.mse(Yte[..., j], pred[..., j]), 4) for j in range(c)],
            "mean_forecast": [round(float(v), 4) for v in pred.mean(axis=(0, 1))],
            "mean_target": [round(float(v), 4) for v in Yte.mean(axis=(0, 1))],
        },
        "baselines_mse": {
            "window_mean": round(metrics.mse(Yte, window_mean), 4),
            "last_value": round(metrics.mse(Yte, last_value), 4),
        },
        "within_10pct_or_better": bool(mse <= 1.10 * paper_mse),
        "seq_len": seq_len,
        "label_len": label_len,
        "factor": factor,
        "seed": args.seed,
        "hparams": json.loads(args.hparams),
        "epochs_run": report.epochs,
        "best_epoch": report.extra.get("best_epoch"),
        "history": [{k: round(float(v), 4) for k, v in h.items()} for h in report.extra.get("history", [])],
        "val_mse_best": None if report.val_loss is None else round(report.val_loss, 4),
        "fit_seconds": round(report.wall_seconds, 1),
        "seconds_per_epoch": round(report.wall_seconds / max(report.epochs, 1), 1),
        "seconds_per_step": round(report.wall_seconds / max(report.epochs * steps, 1), 3),
        "predict_seconds": round(predict_s, 2),
        "peak_memory_mb": round(peak_memory_mb("gpu" if report.device.startswith("cuda") else "cpu"), 1),
        "device": report.device,
        "precision": str(report.extra.get("precision")),
        "threads": torch.get_num_threads(),
        "n_windows": {"train": int(Xtr.shape[0]), "val": int(Xva.shape[0]), "test": int(Xte.shape[0])},
        "machine": machine(),
        "code": code_version(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def code_version() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes): a result names the code that made it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", {torch.cuda.get_device_name(0)}"
    except Exception:
        pass
    return desc


def load_results(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"benchmark": "informer_ett", "dataset": "ETTh1", "results": {}}


def save_results(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_key(mode: str, horizon: int, seed: int) -> str:
    """Results key of one run: ``mode/horizon`` for seed 0, ``mode/horizon@seedN`` otherwise."""
    return f"{mode}/{horizon}" if seed == 0 else f"{mode}/{horizon}@seed{seed}"


def table(doc: dict) -> dict:
    """One row per (mode, horizon): the mean over every seed run so far, beside the paper."""
    rows = {}
    for mode in MODES:
        for h in HORIZONS:
            base = f"{mode}/{h}"
            runs = [r for k, r in sorted(doc["results"].items()) if k == base or k.startswith(base + "@")]
            mse = float(np.mean([r["mse"] for r in runs])) if runs else None
            rows[base] = {
                "paper_mse": PAPER[mode][h][0],
                "paper_mae": PAPER[mode][h][1],
                "mse": None if mse is None else round(mse, 4),
                "mae": round(float(np.mean([r["mae"] for r in runs])), 4) if runs else None,
                "runs": len(runs),
                "mse_per_run": [r["mse"] for r in runs],
                "within_10pct_or_better": None if mse is None else bool(mse <= 1.10 * PAPER[mode][h][0]),
                "seconds_per_epoch": round(float(np.mean([r["seconds_per_epoch"] for r in runs])), 1)
                if runs
                else None,
                "device": runs[0]["device"] if runs else None,
            }
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--horizons", default=",".join(map(str, HORIZONS)), help="comma-separated (default: all five)"
    )
    ap.add_argument("--modes", default=",".join(MODES), help="univariate, multivariate or both")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    ap.add_argument(
        "--precision",
        default="32-true",
        help="Lightning precision (default 32-true, as the paper; bf16-mixed: bf16 autocast, "
        "~2x faster on CPUs with AVX512-BF16 and on GPUs, 25x slower on CPUs without native bf16; "
        "auto: bf16-mixed on a GPU or a CPU with native bf16, else 32-true)",
    )
    ap.add_argument(
        "--preset",
        choices=("paper", "reference"),
        default="paper",
        help="paper (default): the per-horizon input lengths of the paper's ETTh1 scripts; "
        "reference: seq_len 96 / label_len 48 / factor 5 for every horizon",
    )
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--label-len", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--max-minutes", type=float, default=None, help="cap on one fit's training time")
    ap.add_argument("--seed", type=int, default=0, help="the seed of a single run per row (default 0)")
    ap.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seeds, one run each; the table shows their mean (e.g. 0,1,2)",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at the same time (a GPU has room for several; default 1)",
    )
    ap.add_argument(
        "--hparams",
        default="{}",
        help='extra Informer hyper-parameters as JSON, e.g. \'{"attention": "full"}\' '
        "(ablations, smoke tests)",
    )
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--out",
        default=None,
        help="results JSON (default bench/results/informer_ett.json; "
        "informer_ett_reference.json with --preset reference)",
    )
    ap.add_argument("--force", action="store_true", help="re-run entries already in the results file")
    ap.add_argument(
        "--single", default=None, help=argparse.SUPPRESS
    )  # "mode/horizon": run one in this process
    args = ap.parse_args(argv)
    if args.device == "gpu":
        import torch

        if not torch.cuda.is_available():
            print(json.dumps({"error": "--device gpu but CUDA is not available"}))
            return 2
    if not Path(args.data).is_file():
        print(json.dumps({"error": f"ETTh1 CSV not found at {args.data}"}))
        return 2

    if args.single:
        mode, h = args.single.split("/")
        print(json.dumps(run_one(args, mode, int(h))))
        return 0

    out = (
        Path(args.out)
        if args.out
        else RESULTS / ("informer_ett.json" if args.preset == "paper" else "informer_ett_reference.json")
    )
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    horizons = [int(h) for h in args.horizons.split(",") if h.strip()]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}; choose from {MODES}")
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else [args.seed]
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be >= 1, got {args.jobs}")
    t_start = time.perf_counter()
    done = load_results(out)["results"]
    todo = []
    for mode in modes:  # univariate first: the cheaper, the first rows of the table
        for h in horizons:
            for seed in seeds:
                key = run_key(mode, h, seed)
                if key in done and not args.force:
                    print(
                        f"[informer_ett] {key}: done already (mse {done[key]['mse']}), skipping",
                        file=sys.stderr,
                    )
                else:
                    todo.append((key, f"{mode}/{h}", seed))
    child = [a for a in (argv if argv is not None else sys.argv[1:])]
    lock = threading.Lock()

    def train(task: tuple[str, str, int]) -> None:
        key, single, seed = task
        print(f"[informer_ett] {key}: training …", file=sys.stderr, flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), *child, "--single", single, "--seed", str(seed)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{key} failed (exit {proc.returncode}); its error is above")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        with lock:
            doc = load_results(out)  # re-read: another run may have added entries meanwhile
            doc["results"][key] = result
            save_results(out, doc)
        print(
            f"[informer_ett] {key}: mse {result['mse']} mae {result['mae']} "
            f"(paper {result['paper_mse']} / {result['paper_mae']}), {result['seconds_per_epoch']} s/epoch",
            file=sys.stderr,
            flush=True,
        )

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        failures = [f.exception() for f in [pool.submit(train, t) for t in todo] if f.exception() is not None]
    if failures:
        raise SystemExit("; ".join(map(str, failures)))
    doc = load_results(out)
    print(
        json.dumps(
            {
                "table": table(doc),
                "results_file": str(out),
                "seconds": round(time.perf_counter() - t_start, 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
