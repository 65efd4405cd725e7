"""The check plan (checks/plan.py) with a hand-advanced clock in int ms: spreading over the
interval, stable phases, the concurrency bound, overrun skips, no catch-up after a stall, reload
by difference. (These were sleeping integration tests; tests/integration/test_checks_scheduler.py
keeps the driver against real sockets.)"""

import pytest

from hadirector.checks.plan import IDLE, QUEUED, RUNNING, CheckPlan, phase_of
from hadirector.config.model import RealKey


def keys(n, port=80):
    return [RealKey("TCP 198.18.0.100:80", f"198.18.1.{i + 1}", port) for i in range(n)]


def run(plan, until, check_ms=0, now=0):
    """Advance the clock from deadline to deadline up to `until`; every check takes `check_ms`.
    Returns {key: [start times]}."""
    starts: dict = {}
    running: list = []  # (ends at, slot)
    while True:
        nxt = plan.next_deadline()
        ends = min((e for e, _ in running), default=None)
        t = min(x for x in (nxt, ends) if x is not None) if (nxt is not None or ends is not None) else None
        if t is None or t > until:
            return starts
        now = max(now, t)
        for e, slot in sorted((r for r in running if r[0] <= now), key=lambda r: r[0]):
            running.remove((e, slot))
            for s in plan.done(slot, now):
                starts.setdefault(s.key, []).append(now)
                running.append((now + check_ms, s))
        for s in plan.due(now):
            starts.setdefault(s.key, []).append(now)
            if check_ms:
                running.append((now + check_ms, s))
            else:
                assert plan.done(s, now) == []
        assert plan.inflight == len(running) <= plan.concurrency


def test_every_real_checked_each_interval_spread_over_it():
    plan = CheckPlan(startup_window=1000)
    ks = keys(40)
    for k in ks:
        assert plan.set(k, 1000, now=0) == "added"
    starts = run(plan, until=2600)
    for k in ks:  # every grid point up to 2.6 s (2 or 3 turns), within the 1 ms timer slack
        first = int(phase_of(k) * 1000)
        want = [t for t in (first, first + 1000, first + 2000) if t <= 2600]
        assert len(starts[k]) == len(want) and all(0 <= w - g <= 1 for g, w in zip(starts[k], want)), starts[k]
    firsts = sorted(s[0] for s in starts.values())
    assert firsts[-1] - firsts[0] > 500 and all(0 <= f < 1000 for f in firsts)  # spread, not a burst
    for k in ks:  # each real keeps its phase: one interval between its checks
        s = starts[k]
        assert all(999 <= b - a <= 1001 for a, b in zip(s, s[1:])), s
    st = plan.stats()
    assert st.overruns == 0 and st.inflight == 0 and st.lateness_max_ms == 0


def test_startup_window_shorter_than_the_interval():
    plan = CheckPlan(startup_window=1000)
    ks = keys(20)
    for k in ks:
        plan.set(k, 10_000, now=0)
    starts = run(plan, until=15_000)
    assert all(s[0] < 1000 for s in starts.values())  # every real checked within the first second
    for k in ks:  # then on its grid: anchor = phase x interval
        assert starts[k][1] == int(phase_of(k) * 10_000) + (10_000 if int(phase_of(k) * 10_000) <= starts[k][0] else 0)


def test_concurrency_bound_queues_and_starts_as_checks_finish():
    plan = CheckPlan(concurrency=3, startup_window=50)
    ks = keys(12)
    for k in ks:
        plan.set(k, 1000, now=0)
    started = []
    for t in range(0, 51):
        started += plan.due(t)
    assert len(started) == 3 and plan.inflight == 3 and plan.stats().queued == 9
    assert all(s.state == RUNNING for s in started)
    more = plan.done(started[0], 400)
    assert len(more) == 1 and more[0].state == RUNNING and plan.inflight == 3
    assert started[0].state == IDLE and plan.stats().queued == 8
    # every check held 400 ms: never more than 3 at once (run() asserts it at every step), and
    # everyone gets its turn as places free up
    plan2 = CheckPlan(concurrency=3, startup_window=50)
    for k in ks:
        plan2.set(k, 60_000, now=0)
    starts = run(plan2, until=1700, check_ms=400)
    assert set(starts) == set(ks)
    assert plan2.stats().lateness_max_ms >= 1150  # the last queued ones started ~3 x 400 ms late


def test_overrun_skips_a_turn_never_two_checks_at_once():
    plan = CheckPlan(startup_window=10)
    [k] = keys(1)
    plan.set(k, 500, now=0)
    starts = run(plan, until=2000, check_ms=1300)  # each check takes longer than two intervals
    s = starts[k]
    assert all(b - a >= 1300 for a, b in zip(s, s[1:])), s  # one check at a time
    assert plan.stats().overruns >= 2


def test_no_catch_up_burst_after_a_stall():
    plan = CheckPlan(startup_window=1000)
    ks = keys(10)
    for k in ks:
        plan.set(k, 1000, now=0)
    run(plan, until=999)
    started = plan.due(5500)  # the loop stalled 4.5 intervals
    assert sorted(s.key for s in started) == sorted(ks)  # each real once, not five times
    for s in started:
        plan.done(s, 5500)
    assert plan.due(5500) == []
    nxt = plan.next_deadline()
    assert 5500 < nxt <= 6500  # back on the grid


def test_due_within_the_timer_slack_counts_as_due():
    plan = CheckPlan(startup_window=1000)
    [k] = keys(1)
    plan.set(k, 1000, now=0)
    d = plan.next_deadline()
    assert plan.due(d - 2) == [] and len(plan.due(d - 1)) == 1


def test_update_by_difference_keeps_phase_and_state():
    plan = CheckPlan(startup_window=10)
    a, b = keys(2)
    plan.set(a, 200, now=0)
    plan.set(b, 200, now=0)
    run(plan, until=500)
    assert plan.set(a, 200, now=500) == "unchanged"
    assert plan.set(b, 1000, now=500) == "changed"  # keeps its phase on the new grid
    starts = run(plan, until=3000, now=500)
    sb = starts[b]
    assert sb[0] == 500 + int(phase_of(b) * 1000) and [y - x for x, y in zip(sb, sb[1:])] == [1000] * (len(sb) - 1)
    assert len(starts[a]) >= 12  # a goes on every 200 ms
    removed = plan.remove(a)
    assert removed is not None and not removed.alive and a not in plan.slots
    assert a not in run(plan, until=5000, now=3000)  # no longer checked


def test_a_removed_slot_never_starts_and_frees_its_place():
    plan = CheckPlan(concurrency=1, startup_window=10)
    a, b, c = keys(3)
    for k in (a, b, c):
        plan.set(k, 1000, now=0)
    started = []
    for t in range(11):
        started += plan.due(t)
    [first] = started
    waiting = [k for k in (a, b, c) if k != first.key]
    gone = plan.slots[waiting[0]]
    plan.remove(waiting[0])
    assert gone.state == QUEUED
    more = plan.done(first, 20)  # the removed one is skipped: the other queued one starts
    assert [s.key for s in more] == [waiting[1]]
    plan.remove(waiting[1])
    assert plan.done(more[0], 30) == [] and plan.inflight == 0


def test_next_deadline_and_bounds():
    plan = CheckPlan()
    assert plan.next_deadline() is None and plan.due(10**9) == []
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        CheckPlan(concurrency=0)
    with pytest.raises(ValueError, match="at least 1 ms"):
        plan.set(keys(1)[0], 0, now=0)
    [k] = keys(1)
    plan.set(k, 1000, now=0)
    plan.remove(k)
    assert plan.next_deadline() is None  # stale entries do not count
    plan.set(k, 1000, now=0)
    plan.clear()
    assert plan.slots == {} and plan.next_deadline() is None
