"""The walking skeleton: `adaptcast run` on the embedded scenario, metrics served while it runs."""

from __future__ import annotations

import threading
import urllib.request

from click.testing import CliRunner

from adaptcast.streams.cli import main
from adaptcast.streams.config import load_config
from adaptcast.streams.embedded import run_embedded
from adaptcast.streams.metrics import MODEL_SERVING, Metrics, MetricsServer


def test_run_prints_summary():
    res = CliRunner().invoke(main, ["run", "--metrics-port", "0"])
    assert res.exit_code == 0, res.output
    assert "adaptcast run: scenario level_shift" in res.output and "MAE" in res.output
    # the default job adapts: the level shift is detected and the model retrained
    alarms = int(res.output.split(" drift alarms")[0].rsplit(" ", 1)[1])
    retrains = int(res.output.split(" retrains")[0].rsplit(" ", 1)[1])
    assert alarms >= 1 and retrains >= 2


def test_embedded_counts_and_metrics():
    cfg = load_config(
        overrides={
            "scenario": {"steps": 300, "series": 3},
            "metrics": {"enabled": False},
            "model": {"kind": "naive"},
            "adaptation": {"policy": "never", "memory": False, "min_train_rows": 200},
        },
        environ={},
    )
    m = Metrics()
    s = run_embedded(cfg, metrics=m)
    assert s.records == 900
    # the first model is trained once min_train_rows rows are buffered; every later record is forecast
    warmup = cfg.adaptation.min_train_rows
    assert s.forecasts == 3 * (300 - warmup)
    assert s.retrains == 1
    text = m.render().decode()
    assert f"adaptcast_predictions_total {s.forecasts:.1f}" in text
    assert s.mae > 0


def test_metrics_endpoints():
    m = Metrics()
    srv = MetricsServer(m, port=0)
    try:
        body = urllib.request.urlopen(srv.url, timeout=5).read().decode()
        assert "adaptcast_build_info" in body
        health = urllib.request.urlopen(srv.url.replace("/metrics", "/healthz"), timeout=5)
        assert health.status == 200
        try:
            urllib.request.urlopen(srv.url.replace("/metrics", "/readyz"), timeout=5)
            raise AssertionError("readyz must be 503 before a model is loaded")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
        m.set_condition(MODEL_SERVING)
        assert urllib.request.urlopen(srv.url.replace("/metrics", "/readyz"), timeout=5).status == 200
    finally:
        srv.close()
    assert not any(t.name == "metrics-http" and t.is_alive() for t in threading.enumerate())


def test_bad_flag_exit_2():
    res = CliRunner().invoke(main, ["run", "--scenario", "nope"])
    assert res.exit_code == 2 and "unknown scenario" in res.output
