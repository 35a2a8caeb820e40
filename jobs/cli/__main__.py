"""``python -m riverflink.cli ARGS``: the ``riverflink`` command."""

from riverflink.cli import entry

entry()
