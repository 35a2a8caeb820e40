"""Per-key learning logic (plain Python) and the thin Flink functions around it.

``riverflink.operators.functions`` imports PyFlink; ``learner``, ``live_models``, ``records`` and
``results`` do not, so they are tested without a JVM.
"""
