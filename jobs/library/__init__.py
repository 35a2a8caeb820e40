"""The functions for your own code: :func:`learn` in a PyFlink job, :func:`replay` in plain
Python, :func:`load_models` of an export. Also ``riverflink.learn`` and the others."""

from riverflink.library.learn import Learned, learn
from riverflink.library.models import load_models
from riverflink.library.replay import replay

__all__ = ["Learned", "learn", "load_models", "replay"]
