"""Prometheus and Grafana for adaptcast: rules and dashboards generated from one source, a local Prometheus.

``rules`` and ``dashboards`` declare what ``deploy/prometheus/rules/`` and ``deploy/grafana/dashboards/``
hold; ``generate`` writes those files; ``prometheus`` installs, configures and runs a Prometheus;
``python -m adaptcast.deploy.monitoring`` is the command line behind ``make monitor``.
"""
