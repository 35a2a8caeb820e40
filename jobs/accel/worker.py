"""The learning operator's worker set-up: the patches a Python worker takes as it opens.

The runtime hands :func:`worker_setup_for_job` to the pipeline, which passes it to
``riverflink.operators.functions.LearnPerKey`` as its ``on_open`` hook, so the operators never
import the accelerators.
"""

from __future__ import annotations

import functools
import os

from riverflink.accel import SWITCHES, enabled
from riverflink.accel.collector import budget_full_collections
from riverflink.accel.sampler import shorten_sampling
from riverflink.accel.state_commit import pipeline_commits
from riverflink.accel.state_prefetch import reader

__all__ = ["worker_setup", "worker_setup_for_job"]


def worker_setup(off: frozenset = frozenset()) -> dict:
    """Patches for a Python worker, run by the learning operator as it opens; returns
    what the operator may use, each None where its accelerator is off: ``read_many``
    (``riverflink.accel.state_prefetch``) and ``after_element``
    (``riverflink.accel.collector``).

    ``off``: the accelerators switched off where the job was built. A cluster's workers
    do not share the environment of the client that submitted the job, so the client's
    switches travel with the job (see :func:`worker_setup_for_job`).
    """
    for name in off:
        os.environ[SWITCHES[name]] = "0"
    pipeline_commits()
    shorten_sampling()
    return {"read_many": reader(), "after_element": budget_full_collections()}


def worker_setup_for_job():
    """The learning operator's ``on_open`` hook for a job built in this process: a
    picklable call of :func:`worker_setup` that carries this process's switches."""
    off = frozenset(name for name in SWITCHES if not enabled(name))
    return functools.partial(worker_setup, off=off)
