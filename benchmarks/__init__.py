"""Benchmarks that print numbers (`make bench`); not tests."""
