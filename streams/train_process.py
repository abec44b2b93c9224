"""Retraining in a child process, so a fit shares neither the serving process's GIL nor its priority.

The live worker's trainer thread hands each job to one long-lived child (``python -m
adaptcast.streams.train_child``) as files in a job directory and gets the candidates back as
saved models. Nothing is pickled either way: arrays travel as ``.npy`` files read with
``allow_pickle=False``, models through ``save`` / ``load_forecaster``, the rest as JSON, and the
two processes exchange only a directory name and ``done`` over the child's stdin and stdout. The
child lowers its scheduling priority, so on a contended machine serving gets the CPU first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from adaptcast.drift.compute import ComputeLedger
from adaptcast.forecast.base import FitReport, create_forecaster, load_forecaster
from adaptcast.forecast.threads import set_torch_threads
from adaptcast.streams.retrain import BackgroundTrainer, TrainingSet, TrainJob, TrainOutcome, fit_candidate

CLOSE_WAIT_S = 5.0  # how long close() lets the child finish before killing it
JOB, RESULT = "job.json", "result.json"
ARRAYS = ("X", "Y", "val_X", "val_Y", "full_X", "full_Y")


class TrainProcessGone(RuntimeError):
    """The child process exited (killed, out of memory) before answering."""


def write_job(directory: Path, job: TrainJob) -> None:
    """What the child needs to run ``job``: the template's recipe, the training arrays, a warm start."""
    data, t = job.data, job.template
    arrays = {"X": data.X, "Y": data.Y, "full_X": data.full[0], "full_Y": data.full[1]}
    if data.val is not None:
        arrays.update(val_X=data.val[0], val_Y=data.val[1])
    for name, arr in arrays.items():
        np.save(directory / f"{name}.npy", arr, allow_pickle=False)
    if job.warm_from is not None:
        job.warm_from.save(directory / "warm")
    spec = {
        "kind": t.kind,
        "config": t.config,
        "schema": t.schema,
        "rows": data.rows,
        "refit": job.refit,
        "closed_form": job.closed_form,
        "warm": job.warm_from is not None,
        "recipe": job.recipe,  # an ungated job: one fit with these hyper-parameters
    }
    (directory / JOB).write_text(json.dumps(spec))


def run_directory(directory: Path) -> None:
    """In the child: read a job, fit it with :func:`fit_candidate`, save the models and a result file.

    The result holds the fit reports and the ledger's ``train`` totals, or the error that ended it.
    """
    ledger = ComputeLedger()
    result: dict[str, Any]
    try:
        spec = json.loads((directory / JOB).read_text())
        arrays = {
            n: np.load(directory / f"{n}.npy", allow_pickle=False)
            for n in ARRAYS
            if (directory / f"{n}.npy").exists()
        }
        val = (arrays["val_X"], arrays["val_Y"]) if "val_X" in arrays else None
        data = TrainingSet(arrays["X"], arrays["Y"], val, spec["rows"], (arrays["full_X"], arrays["full_Y"]))
        template = create_forecaster(spec["kind"], **spec["config"])
        template.schema = spec["schema"]
        warm_from = load_forecaster(directory / "warm") if spec["warm"] else None
        gate, model, reports = fit_candidate(
            template,
            data,
            ledger,
            refit=spec["refit"],
            warm_from=warm_from,
            closed_form=spec["closed_form"],
            recipe=spec.get("recipe"),
        )
        model.save(directory / "model")
        if gate is not None and gate is not model:
            gate.save(directory / "gate")
        result = {"reports": [r.to_dict() for r in reports]}
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["train"] = ledger.totals().get("train")
    (directory / RESULT).write_bytes(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY))


def read_outcome(directory: Path, job: TrainJob, ledger: ComputeLedger) -> TrainOutcome:
    """The child's answer to ``job`` as a :class:`TrainOutcome`; its training cost goes into ``ledger``."""
    result = orjson.loads((directory / RESULT).read_bytes())
    if result.get("train"):
        ledger.add("train", **result["train"])
    if "error" in result:
        return TrainOutcome(job, None, None, result["error"])
    reports = [FitReport(**r) for r in result["reports"]]
    model = load_forecaster(directory / "model")
    gate = load_forecaster(directory / "gate") if (directory / "gate").exists() else None
    if gate is None and job.gated:
        gate = model  # no refit: the gated fit is what serves
    return TrainOutcome(job, model, reports[0], gate=gate, reports=reports)


class ProcessTrainer(BackgroundTrainer):
    """A :class:`BackgroundTrainer` whose jobs run in one child process at lower priority.

    The child starts with the first job and serves every later one; if it dies, the job fails
    (a ``RetrainFailed`` event) and the next job starts a new child. ``threads`` is the child's
    torch intra-op thread count.
    """

    def __init__(self, ledger: ComputeLedger, threads: int = 1):
        self.threads = threads
        self._proc: subprocess.Popen[str] | None = None
        super().__init__(ledger)

    def _run(self, job: TrainJob) -> TrainOutcome:
        directory = Path(tempfile.mkdtemp(prefix="adaptcast-train-"))
        try:
            write_job(directory, job)
            self._ask(directory)
            return read_outcome(directory, job, self.ledger)
        except (OSError, ValueError, TrainProcessGone) as exc:
            return TrainOutcome(job, None, None, f"training process: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _ask(self, directory: Path) -> None:
        """Hand ``directory`` to the child (started now if none runs) and wait for its answer."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "adaptcast.streams.train_child", "--threads", str(self.threads)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{directory}\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # the child is gone: the read below says how it ended
        if not proc.stdout.readline():
            raise TrainProcessGone(f"the training process exited with code {proc.wait()}")

    def close(self) -> None:
        """Stop the child, then the trainer thread; a job still running is killed (its outcome is moot)."""
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                if self.busy:
                    raise subprocess.TimeoutExpired(proc.args, 0)
                proc.wait(timeout=CLOSE_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        super().close()


def child_main(argv: list[str]) -> None:
    """The child's loop (started by :mod:`.train_child`): a job directory per line in, ``done`` out."""
    ap = argparse.ArgumentParser(description="adaptcast's retraining process (started by the live worker)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints goes to stderr
    sys.stdout = sys.stderr
    set_torch_threads(args.threads)
    for line in sys.stdin:
        run_directory(Path(line.strip()))
        reply.write("done\n")
        reply.flush()
