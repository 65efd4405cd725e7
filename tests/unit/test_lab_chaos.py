"""The chaos suite's figures from raw samples (hadirector.lab.chaos.analyse), pure."""

from hadirector.lab.chaos import analyse, longest_outage

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
NAMES = {A: "dir-a", B: "dir-b"}


def arp(*windows):
    return {"period": 0.01, "samples": [[i * 0.01, list(w)] for i, w in enumerate(windows)]}


def test_double_silent_and_moves_from_the_arp_windows():
    a = arp([A], [A], [A, B], [B], [], [], [B], [A], [A])
    m = analyse(a, {"requests": []}, NAMES, 0.0, 0.09)
    assert (m.double_ms, m.silent_ms) == (10, 20)
    assert m.holders == ["dir-a", "dir-b", "dir-a"] and m.moves == 2
    assert m.final == ("dir-a", "dir-b")  # the last 0.5 s saw both
    # A, both, A: a double answer but no move
    assert analyse(arp([A], [A, B], [A]), {"requests": []}, NAMES, 0, 1).moves == 0


def test_the_outage_counts_by_send_time_and_ignores_a_client_that_did_not_send():
    reqs = [[0.00, 0.01, "dir-a"], [0.01, 0.02, "dir-a"],
            [0.02, 1.02, None], [0.03, 1.03, None], [0.50, 0.51, "dir-b"],  # lost 0.02..0.50
            [0.51, 0.52, "dir-b"],
            [2.00, 2.01, "dir-b"],  # the client itself stalled 0.51..2.00: nothing was lost
            [2.01, None, None]]  # still open at the end: unknown, not lost
    assert round(longest_outage(reqs, 0, 3), 3) == 0.48
    # failures up to the end count until t1
    assert round(longest_outage([[0.0, 0.1, "x"], [1.0, 2.0, None]], 0, 3), 3) == 2.0
    # at a cold start the time before the first answer is not an outage
    assert longest_outage([[0.0, 1.0, None], [0.5, 0.6, "x"]], 0, 1, cold_start=True) == 0
    assert longest_outage([[0.0, 1.0, None], [0.5, 0.6, "x"]], 0, 1) == 0.5
