"""Pure ldirectord/keepalived service semantics: quiescent, fallback, quorum, fallbackcommand."""

from hadirector.checks.base import real_key
from hadirector.checks.scheduler import RealHealth
from hadirector.checks.service import ServiceTracker, evaluate, next_quorum
from hadirector.config.model import Fallback, Real, VirtualService


def vs_of(**kw):
    reals = kw.pop("reals", [Real(address="198.18.1.11", weight=3), Real(address="198.18.1.12", weight=2)])
    return VirtualService(address="198.18.0.100", port=80, reals=reals, **kw)


def health(vs, *ups, weights=None):
    out = {}
    for i, (real, up) in enumerate(zip(vs.reals, ups)):
        k = real_key(vs, real)
        w = (weights or {}).get(i)
        out[k] = RealHealth(k, up, w, up, "ok" if up else "refused", 1.0, 1.0, 1, 0, 0, vs.checktype)
    return out


def test_quiescent_yes_keeps_down_real_at_weight_zero():
    vs = vs_of(quiescent=True)
    view = evaluate(vs, health(vs, True, False), readdquiescent=True)
    a, b = view.reals
    assert (a.state, a.weight) == ("up", 3)
    assert (b.state, b.weight, b.readd, b.reason) == ("quiescent", 0, True, "refused")
    assert view.fallback is None and view.any_up and view.weight_sum == 3


def test_quiescent_no_removes_down_real():
    vs = vs_of(quiescent=False)
    _, b = evaluate(vs, health(vs, True, False)).reals
    assert b.state == "removed"


def test_fallback_only_while_no_real_is_up():
    fb = Fallback(address="127.0.0.1", port=80)
    vs = vs_of(fallback=fb)
    assert evaluate(vs, health(vs, False, False)).fallback == fb
    assert evaluate(vs, health(vs, False, True)).fallback is None


def test_unchecked_reals_follow_alpha_and_on_off():
    vs = vs_of()
    assert all(r.state == "up" for r in evaluate(vs, {}).reals)
    vs = vs_of(alpha=True)
    assert all(r.state == "removed" for r in evaluate(vs, {}).reals)
    vs = vs_of(checktype="off", fallback=Fallback(address="127.0.0.1"))
    view = evaluate(vs, health(vs, True, True))
    assert not view.any_up and view.fallback is not None  # ldirectord's code adds the fallback
    vs = vs_of(checktype="on")
    assert evaluate(vs, health(vs, False, False)).any_up


def test_dynamic_weight_used():
    vs = vs_of()
    view = evaluate(vs, health(vs, True, True, weights={0: 9}))
    assert [r.weight for r in view.reals] == [9, 2] and view.weight_sum == 11


def test_quorum_hysteresis():
    vs = vs_of(quorum=4, hysteresis=1)
    assert next_quorum(vs, 3, True) is True  # 3 >= 4-1: kept
    assert next_quorum(vs, 2, True) is False  # below 3: lost
    assert next_quorum(vs, 4, False) is False  # needs 5 to come back
    assert next_quorum(vs, 5, False) is True
    assert next_quorum(vs_of(), 0, True) is True  # quorum 0 = off


def test_quorum_lost_with_fallback_withdraws_reals_and_runs_commands():
    fb = Fallback(address="127.0.0.1", port=80)
    vs = vs_of(quorum=5, hysteresis=0, fallback=fb, quorum_up="/bin/qup", quorum_down="/bin/qdown")
    tr = ServiceTracker()
    view, cmds = tr.observe(vs, health(vs, True, True))
    assert view.quorum_up and view.fallback is None and cmds == []
    view, cmds = tr.observe(vs, health(vs, True, False))
    assert not view.quorum_up and view.fallback == fb
    assert [r.state for r in view.reals] == ["removed", "removed"]
    assert [c.command for c in cmds] == ["/bin/qdown"] and "lost" in cmds[0].why
    view, cmds = tr.observe(vs, health(vs, True, True))
    assert view.quorum_up and [c.command for c in cmds] == ["/bin/qup"]


def test_fallbackcommand_start_stop_on_change_only():
    vs = vs_of(fallbackcommand="/usr/local/bin/fb")
    tr = ServiceTracker()
    _, cmds = tr.observe(vs, health(vs, True, True))
    assert [(c.command, c.args) for c in cmds] == [("/usr/local/bin/fb", ("stop", "198.18.0.100:80", "tcp"))]
    assert tr.observe(vs, health(vs, False, True))[1] == []
    _, cmds = tr.observe(vs, health(vs, False, False))
    assert [c.args[0] for c in cmds] == ["start"]
    assert tr.observe(vs, health(vs, False, False))[1] == []
    _, cmds = tr.observe(vs, health(vs, True, False))
    assert [c.args[0] for c in cmds] == ["stop"]
