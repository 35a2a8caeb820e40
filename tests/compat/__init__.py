"""Compat tests: one per private contact point of riverflink with PyFlink, Beam, Flink
and the JVM, run against the installed classes (see ``tests/compat/conftest.py``)."""
