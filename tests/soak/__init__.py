"""Soak tests: the whole gateway as a separate process, under load and ``kill -9`` (marked ``slow``)."""
