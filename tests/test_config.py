"""Config: defaults, YAML file, env overrides, and errors that name the key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from adaptcast.streams.cli import main
from adaptcast.streams.config import ConfigError, env_overrides, load_config


def test_defaults_file_env_and_flags_layer_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  kind: lstm\n  lookback: 24\nkafka:\n  group: g1\n")
    cfg = load_config(
        f,
        overrides={"kafka": {"group": "g3"}},
        environ={"ADAPTCAST__MODEL__LOOKBACK": "96", "ADAPTCAST__KAFKA__GROUP": "g2"},
    )
    assert cfg.model.kind == "lstm"  # file
    assert cfg.model.lookback == 96  # env beats file, parsed as an int
    assert cfg.kafka.group == "g3"  # flag beats env
    assert cfg.model.horizon == 12  # default


def test_numbers_with_an_exponent_and_no_dot_are_numbers(tmp_path):
    """YAML 1.1 reads ``1e-3`` as a string; a user writing one means a number, in a file, a
    variable or a ``--compare`` value alike."""
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  params:\n    ridge: 1e-3\nadaptation:\n  memory_params:\n    prior: 1E9\n")
    cfg = load_config(f, environ={"ADAPTCAST__MODEL__PARAMS__LR": "-2e-4"})
    assert cfg.model.params == {"ridge": 0.001, "lr": -0.0002}
    assert cfg.adaptation.memory_params == {"prior": 1e9}
    assert env_overrides({"ADAPTCAST__MODEL__PARAMS__NAME": "1e"}) == {"model": {"params": {"name": "1e"}}}


def test_env_overrides_parse_yaml_scalars_and_nest():
    got = env_overrides(
        {"ADAPTCAST__METRICS__ENABLED": "false", "ADAPTCAST__MODEL__PARAMS__SEASON": "24", "OTHER": "x"}
    )
    assert got == {"metrics": {"enabled": False}, "model": {"params": {"season": 24}}}


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("model:\n  lookback: -3\n", "model.lookback"),
        ("model:\n  lookbak: 3\n", "model.lookbak: unknown key (did you mean lookback?)"),
        ("modle:\n  kind: arnet\n", "modle: unknown key (did you mean model?)"),
        ("serving:\n  record_fromat: flat\n", "record_fromat: unknown key (did you mean record_format?)"),
        ("model:\n  zzz: 1\n", "model.zzz: unknown key;"),  # nothing close: no guess
        (
            "serving:\n  series_field: sensor_id\n",
            "series_field names a field of flat, debezium, cloudevents records; set record_format",
        ),
        ("kafka:\n  security_protocol: TLS\n", "kafka.security_protocol"),
        ("scenario:\n  name: nope\n", "unknown scenario 'nope'"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("model: [unclosed\n", "not valid YAML"),
        # checked at load, not at the first fit, where every fit failed and the run served nothing
        ("adaptation:\n  memory_params:\n    priro: 3\n", "unknown key 'priro'; did you mean 'prior'?"),
        ("adaptation:\n  memory_params:\n    prior: lots\n", "prior must be a number, got 'lots'"),
        ("adaptation:\n  memory_params:\n    tau: -1\n", "tau finite > 0"),
    ],
)
def test_bad_config_names_key_and_reason(tmp_path, yaml_text, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError, match=None) as info:
        load_config(f, environ={})
    assert needle in str(info.value) + ";"


def test_cli_config_show_and_bad_value_exit_code_2(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(main, ["config", "show"], env={"ADAPTCAST__MODEL__KIND": "arnet"})
    assert ok.exit_code == 0, ok.output
    assert "kind: arnet" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("serving:\n  max_batch: zero\n")
    res = runner.invoke(main, ["config", "show", "--config", str(bad)])
    assert res.exit_code == 2
    assert "serving.max_batch" in res.output and "Traceback" not in res.output
    missing = runner.invoke(main, ["config", "show", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_password_is_masked_in_show():
    from adaptcast.streams.config import to_yaml

    cfg = load_config(environ={"ADAPTCAST__KAFKA__SASL_PASSWORD": "hunter2"})
    assert "hunter2" not in to_yaml(cfg)


@pytest.mark.parametrize(
    ("kind", "mode", "closed", "often"),
    [
        ("arnet", "closed_form", True, True),
        ("arnet", "cold", False, False),
        ("xgboost", "closed_form", False, True),  # a tree cannot extrapolate: it needs the newest rows
        ("lstm", "closed_form", False, False),
    ],
)
def test_auto_growth_is_frequent_where_fits_are_closed_form_or_trees_and_early_refits_closed_form_only(
    kind, mode, closed, often
) -> None:
    from adaptcast.streams.build import build_loop
    from adaptcast.streams.retrain import (
        AUTO_EARLY_REFIT_CLOSED_FORM,
        AUTO_GROWTH,
        AUTO_GROWTH_OFTEN,
        DEFER_WINDOWS,
    )

    cfg = load_config(overrides={"model": {"kind": kind}, "adaptation": {"refit_mode": mode}}, environ={})
    span = cfg.model.lookback + cfg.model.horizon + DEFER_WINDOWS
    policy = build_loop(cfg).policy
    assert policy.growth == (AUTO_GROWTH_OFTEN if often else AUTO_GROWTH)
    assert policy.min_growth == (0 if closed else span)
    watch = None if policy.bridge is None else (policy.bridge.span, policy.bridge.ratio)
    assert watch == ((cfg.model.horizon, AUTO_EARLY_REFIT_CLOSED_FORM) if closed else None)
    given = {"growth": 1.5, "early_refit_ratio": 2.5}
    policy = build_loop(
        load_config(overrides={"model": {"kind": kind}, "adaptation": given}, environ={})
    ).policy
    assert policy.growth == 1.5 and policy.bridge.ratio == 2.5  # a number is taken as it is, for every kind


@pytest.mark.parametrize("key", ["growth", "early_refit_ratio"])
@pytest.mark.parametrize("bad", [1.0, 0.5, "often"])
def test_growth_and_early_refit_ratio_must_be_above_one_auto_or_null(key, bad) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(overrides={"adaptation": {key: bad}}, environ={})
    cfg = load_config(overrides={"adaptation": {key: None}}, environ={})
    assert getattr(cfg.adaptation, key) is None


def test_run_flags_for_a_producers_record_shape_reach_the_worker_config(monkeypatch):
    import adaptcast.streams.cli as cli

    seen = []
    monkeypatch.setattr(cli, "_serve_kafka", seen.append)
    flags = ["--bootstrap-servers", "127.0.0.1:1", "--record-format", "flat", "--ts-unit", "s"]
    res = CliRunner().invoke(main, ["run", *flags, "--series-from-key", "--ts-from-message"], env={})
    assert res.exit_code == 0, res.output
    serving = seen[0].serving
    assert (serving.record_format, serving.ts_unit, serving.series_from_key, serving.ts_from_message) == (
        "flat",
        "s",
        True,
        True,
    )
    res = CliRunner().invoke(main, ["run", "--bootstrap-servers", "127.0.0.1:1"], env={})
    assert (seen[1].serving.series_from_key, seen[1].serving.ts_from_message) == (
        False,
        False,
    )  # unset: config
