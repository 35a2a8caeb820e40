"""The functions for your own code: :func:`learn` in a PyFlink job, :func:`replay` in plain
Python. Both are also ``riverflink.learn`` and ``riverflink.replay``."""

from riverflink.library.learn import Learned, learn
from riverflink.library.replay import replay

__all__ = ["Learned", "learn", "replay"]
