"""How ``riverflink run`` takes SIGTERM and SIGHUP (``riverflink.cli.run``)."""

from __future__ import annotations

import os
import signal

import pytest

from riverflink.cli.run import Stopped, _stop_on_signals


def test_sigterm_raises_stopped_while_running_and_the_handler_goes_after():
    before = signal.getsignal(signal.SIGTERM)
    if before is not signal.SIG_DFL:  # handled by whatever runs the tests: left to it
        pytest.skip("SIGTERM has a handler here already")
    with pytest.raises(Stopped) as stopped, _stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # a bytecode boundary, where Python runs the handler
    assert stopped.value.signum == signal.SIGTERM and str(stopped.value) == "SIGTERM"
    assert isinstance(stopped.value, KeyboardInterrupt)  # handled as Ctrl-C is
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_ignored_stays_ignored_under_nohup():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does
    try:
        with _stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGHUP, before)
