"""Per-key learning logic (plain Python) and the thin Flink functions around it.

``operators.functions`` imports PyFlink; ``records`` and ``learner`` do not.
"""
