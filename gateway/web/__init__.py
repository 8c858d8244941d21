"""The HTTP surfaces: one ASGI app with the read-only JSON API, pre-flight, the archivist pages,
``/metrics`` and ``/healthz``; served by ``gateway serve`` on ``[http] listen`` or alone."""
