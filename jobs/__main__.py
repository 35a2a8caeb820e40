"""``python -m riverflink ARGS``: the ``riverflink`` command."""

from riverflink.cli import entry

entry()
