"""Seeing what happens to events, shared by every long-running process.

- :mod:`courier.observability.metrics_server`: the ``/metrics`` and ``/healthz`` endpoint
  (``--metrics-port``); each stage defines its own metrics (``courier.<stage>.metrics``), all
  listed in ``docs/metrics.md``;
- :mod:`courier.observability.logging`: JSON or text log lines (``--log-format``), with
  secrets and payload bytes masked;
- :mod:`courier.observability.tracing`: OpenTelemetry spans, one trace per event.
"""
