"""Per-key state: model specs, the versioned envelope, Flink descriptors.

``riverflink.state.descriptors`` imports PyFlink; the rest is plain Python so the
per-key logic can be tested without a JVM.
"""
