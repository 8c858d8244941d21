"""Benchmarks of the gateway, run by ``make bench`` (never by the test suite).

``bench.verify_bench`` measures inbound verification next to a bare pyHanko + signxml loop and
the arithmetic floor, on the same generated packages in the same run (see ``bench/README.md``).
Dev tooling: it imports the test suite's PDF factory (``tests.pdfs``) and the development PKI.
"""
