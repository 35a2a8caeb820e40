"""``python -m jobs.cli ARGS``: the ``riverflink`` command."""

from jobs.cli import entry

entry()
