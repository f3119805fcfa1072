"""``ackmail serve``: /healthz, Prometheus /metrics and read-only ops pages over the ack database.

Every page is rendered on the server (Jinja2, autoescaped) and every number is read
from the database when it is asked for, so the web process keeps no state of its own.
"""
