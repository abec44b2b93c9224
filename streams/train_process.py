"""Retraining in a child process, so a fit shares neither the serving process's GIL nor its priority.

The live worker's trainer thread hands each job to one long-lived child (``python -m
adaptcast.streams.train_child``) as files in a job directory: the histories, not their windows
(about a hundred times smaller at lookback 48 and horizon 12; ``bench/retrain_stall.py``), which
the child builds, fits and assesses. It gets back the candidates as saved models and their
assessment (:mod:`.assess`). Nothing is pickled either way: arrays travel as ``.npy``/``.npz``
files read with ``allow_pickle=False``, models through ``save`` / ``load_forecaster``, the rest as
JSON, and the two processes exchange only a directory name and ``done`` over the child's stdin and
stdout. The child lowers its scheduling priority, so on a contended machine serving gets the CPU
first.
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
from adaptcast.drift.policy import Action, Decision, Reason
from adaptcast.drift.serialize import load_state, save_state
from adaptcast.forecast.base import BaseForecaster, FitReport, create_forecaster, load_forecaster
from adaptcast.forecast.threads import set_torch_threads
from adaptcast.streams.assess import Assessment, Judge
from adaptcast.streams.retrain import BackgroundTrainer, TrainJob, TrainOutcome, run_job

CLOSE_WAIT_S = 5.0  # how long close() lets the child finish before killing it
JOB, RESULT, ASSESSMENT = "job.json", "result.json", "assessment.npz"


class TrainProcessGone(RuntimeError):
    """The child process exited (killed, out of memory) before answering."""


def write_job(directory: Path, job: TrainJob) -> None:
    """What the child needs to run ``job``: the template's recipe, the histories (the child builds
    the windows from them), a warm start and the model the candidate is judged against."""
    t = job.template
    rows = np.concatenate(job.histories) if job.histories else np.empty((0, t.n_features), np.float32)
    np.save(directory / "rows.npy", rows, allow_pickle=False)
    lengths = np.array([len(h) for h in job.histories], np.int64)
    np.save(directory / "lengths.npy", lengths, allow_pickle=False)
    if job.warm_from is not None:
        job.warm_from.save(directory / "warm")
    judge = job.judge
    d = job.decision
    spec = {
        "kind": t.kind,
        "config": t.config,
        "schema": t.schema,
        "rows": job.rows,
        "decision": [d.action.value, d.reason.value, d.window, d.detector, d.change_step],
        "order": [job.step, job.ts_ms, job.seq, job.history_rows],
        "refit": job.refit,
        "closed_form": job.closed_form,
        "warm": job.warm_from is not None,
        "recipe": job.recipe,  # an ungated job: one fit with these hyper-parameters
        # the judge and, beside a judge that is not it, the model that serves: "warm" (the warm start
        # is it), their own name (saved apart) or None; and when the judge's data ended
        "judge": None if judge is None else _send(judge.model, "judge", job.warm_from, directory),
        "judge_ended": None if judge is None else judge.ended,
        "serving": None if judge is None else _send(judge.serving, "serving", job.warm_from, directory),
        "memory": job.memory,
    }
    (directory / JOB).write_text(json.dumps(spec))


def _send(
    model: BaseForecaster | None, name: str, warm_from: BaseForecaster | None, directory: Path
) -> str | None:
    """Save ``model`` under ``name`` unless it is the warm start (saved already); its tag in the spec."""
    if model is None:
        return None
    if model is warm_from:
        return "warm"
    model.save(directory / name)
    return name


def _receive(tag: str | None, warm_from: BaseForecaster | None, directory: Path) -> BaseForecaster | None:
    """The model :func:`_send` tagged ``tag``."""
    if tag is None:
        return None
    return warm_from if tag == "warm" else load_forecaster(directory / tag)


def read_job(directory: Path) -> TrainJob:
    """In the child: the job :func:`write_job` wrote, whole (its windows are built when first used)."""
    spec = json.loads((directory / JOB).read_text())
    rows = np.load(directory / "rows.npy", allow_pickle=False)
    ends = np.cumsum(np.load(directory / "lengths.npy", allow_pickle=False))
    template = create_forecaster(spec["kind"], **spec["config"])
    template.schema = spec["schema"]
    warm_from = load_forecaster(directory / "warm") if spec["warm"] else None
    judge = None
    if spec["judge"] is not None:
        judge_model = _receive(spec["judge"], warm_from, directory)
        assert judge_model is not None
        judge = Judge(judge_model, spec["judge_ended"], _receive(spec.get("serving"), warm_from, directory))
    action, reason, window, detector, change_step = spec["decision"]
    step, ts_ms, seq, history_rows = spec["order"]
    return TrainJob(
        template,
        np.split(rows, ends[:-1]),
        spec["rows"],
        Decision(Action(action), Reason(reason), window, detector, change_step),
        step,
        ts_ms,
        seq,
        history_rows,
        spec["refit"],
        warm_from,
        spec["closed_form"],
        recipe=spec["recipe"],
        judge=judge,
        memory=spec["memory"],
    )


def run_directory(directory: Path) -> None:
    """In the child: read a job, :func:`run_job` it, save the models, their assessment and a result file.

    The result holds the fit reports and the ledger's ``train`` totals, or the error that ended it.
    """
    ledger = ComputeLedger()
    result: dict[str, Any]
    try:
        outcome = run_job(read_job(directory), ledger)
        if outcome.model is None or outcome.assessment is None:
            result = {"error": outcome.error}
        else:
            outcome.model.save(directory / "model")
            if outcome.gate is not None and outcome.gate is not outcome.model:
                outcome.gate.save(directory / "gate")
            save_state(directory / ASSESSMENT, {"assessment": outcome.assessment.state_dict()})
            result = {"reports": [r.to_dict() for r in outcome.reports]}
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
    found = Assessment.from_state(load_state(directory / ASSESSMENT)["assessment"])
    return TrainOutcome(job, model, reports[0], gate=gate, reports=reports, assessment=found)


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
