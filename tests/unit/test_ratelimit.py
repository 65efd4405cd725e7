"""The one log rate limiter (ratelimit.py): per key, `burst` lines a window, the rest counted
and reported when the next window starts."""

import logging

from hadirector.ratelimit import RateLimited


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def limiter(**kw):
    log = logging.getLogger("test.ratelimit")
    log.propagate = False
    h = Lines()
    log.handlers[:] = [h]
    return RateLimited(log, **kw), h.lines


def test_burst_per_key_per_window_then_the_count():
    rl, lines = limiter(window=10.0, burst=2)
    for i in range(5):
        rl.warning("dropped:eth0:auth", 100.0 + i, f"bad auth {i}")
    rl.warning("dropped:eth1:auth", 101.0, "other link")
    assert lines == ["bad auth 0", "bad auth 1", "other link"]
    assert rl.suppressed == 3
    rl.warning("dropped:eth0:auth", 111.0, "bad auth later")
    assert lines[3:] == ["dropped:eth0:auth: 3 more like this suppressed", "bad auth later"]


def test_allow_for_callers_that_log_themselves():
    rl, _ = limiter(window=10.0, burst=1)
    assert [rl.allow("check raised", t) for t in (0.0, 1.0, 9.0, 10.5)] == [True, False, False, True]
