"""Configuration + health -> desired state (balancer/state.py): every rule pinned to the program
it follows, with the function named. The same rules against the running ldirectord:
tests/integration/test_ldirectord_rules.py."""

import pytest

from hadirector.balancer.state import (
    Apply, DesiredState, DesiredStateCore, FallbackChanged, QuorumChanged, RealHealth, RunCommand,
    ServiceMemory, build_desired, diff, next_quorum)
from hadirector.config.model import Balancer, RealKey, VirtualService


def balancer(**virtual_overrides):
    v = {
        "address": "198.18.0.10", "port": 80, "scheduler": "wrr",
        "reals": [
            {"address": "198.18.1.1", "weight": 3, "method": "masq"},
            {"address": "198.18.1.2", "port": 8080, "weight": 1, "method": "gate",
             "upper_threshold": 100, "lower_threshold": 50},
        ],
        "fallback": {"address": "127.0.0.1", "port": 80},
    }
    globals_ = {k: virtual_overrides.pop(k) for k in ("readdquiescent",) if k in virtual_overrides}
    v.update(virtual_overrides)
    return Balancer(virtual=[v], **globals_)


KEY = "TCP 198.18.0.10:80"
R1, R2 = RealKey(KEY, "198.18.1.1", 80), RealKey(KEY, "198.18.1.2", 8080)


def statuses(s):
    return [(r.address, r.status, r.weight) for r in s.reals]


# --------------------------------------------------------------------------- build_desired

def test_all_up_by_default():
    d = build_desired(balancer())
    s = d.service(KEY)
    assert [(r.address, r.port, r.weight, r.status, r.method) for r in s.reals] == [
        ("198.18.1.1", 80, 3, "up", "masq"), ("198.18.1.2", 8080, 1, "up", "gate")]
    assert s.fallback is None
    assert s.installed == s.reals
    assert s.reals[1].upper_threshold == 100 and s.reals[1].lower_threshold == 50


def test_failed_real_removed_without_quiescent():
    # ldirectord _remove_service: not quiescent -> ipvsadm -d
    s = build_desired(balancer(quiescent=False), {R1: False}).service(KEY)
    assert s.reals[0].status == "down"
    assert [r.address for r in s.installed] == ["198.18.1.2"]


def test_failed_real_kept_with_weight_zero_when_quiescent():
    # ldirectord _remove_service: quiescent -> ipvsadm -e ... -w 0
    s = build_desired(balancer(quiescent=True), {R1: RealHealth(up=False)}).service(KEY)
    assert (s.reals[0].status, s.reals[0].weight) == ("quiescent", 0)
    assert [r.address for r in s.installed] == ["198.18.1.1", "198.18.1.2"]
    assert s.fallback is None  # 198.18.1.2 is still up


@pytest.mark.parametrize("quiescent", [False, True])
def test_fallback_only_when_no_real_is_up(quiescent):
    # ldirectord fallback_on / fallback_off, weight 1 (_restore_service(..., "1", "fallback"))
    down = {R1: False, R2: False}
    s = build_desired(balancer(quiescent=quiescent), down).service(KEY)
    assert s.fallback is not None and s.fallback.fallback
    assert (s.fallback.address, s.fallback.port, s.fallback.weight) == ("127.0.0.1", 80, 1)
    installed = [(r.address, r.weight) for r in s.installed]
    if quiescent:
        assert installed == [("198.18.1.1", 0), ("198.18.1.2", 0), ("127.0.0.1", 1)]
    else:
        assert installed == [("127.0.0.1", 1)]
    # one real back: the fallback leaves
    assert build_desired(balancer(quiescent=quiescent), {**down, R2: True}).service(KEY).fallback is None


def test_every_real_up_at_weight_zero_keeps_the_fallback_off():
    # ldirectord fallback_on: _status_up(v, fallback, "fallback") does nothing while real_status
    # (the reals whose check passed, whatever their weight) is defined; the running ldirectord
    # agrees (test_ldirectord_rules.py::all_up_weight_zero). build_desired used to turn it on.
    b = balancer(reals=[{"address": "198.18.1.1", "weight": 0}, {"address": "198.18.1.2", "weight": 0}])
    s = build_desired(b).service(KEY)
    assert [r.status for r in s.reals] == ["up", "up"] and s.fallback is None
    # a check's dynamic weight of 0 (external_weight exit 2) is the same
    s = build_desired(balancer(), {R1: RealHealth(True, 0), R2: False}).service(KEY)
    assert statuses(s)[0] == ("198.18.1.1", "up", 0) and s.fallback is None


def test_weight_from_the_check():
    # keepalived misc_dynamic: the weight the external check reported replaces the configured one
    h = {R1: RealHealth(up=True, weight=7)}
    assert build_desired(balancer(), h).service(KEY).reals[0].weight == 7


def test_alpha_starts_down_unchecked_up_otherwise():
    s = build_desired(balancer(alpha=True, quiescent=False)).service(KEY)
    assert all(r.status == "down" for r in s.reals) and s.fallback is not None
    assert all(r.status == "up" for r in build_desired(balancer()).service(KEY).reals)


def test_checktype_on_and_off_ignore_the_checks():
    # ldirectord _check_real: on -> service_set(up) every time; off -> nothing is added, and
    # ld_start's fallback_on still installs the fallback
    on = build_desired(balancer(checktype="on", alpha=True), {R1: False}).service(KEY)
    assert [r.status for r in on.reals] == ["up", "up"] and on.fallback is None
    off = build_desired(balancer(checktype="off", quiescent=False), {R1: True, R2: True}).service(KEY)
    assert [r.address for r in off.installed] == ["127.0.0.1"]


def test_persistence_fields_and_flags():
    s = build_desired(balancer(scheduler="sh", schedflags=["sh-port"], persistent=300,
                               netmask="255.255.255.0")).service(KEY)
    assert (s.persistent_ms, s.persistent_s, s.netmask, s.sched_flags) == (300_000, 300, 24, ("sh-port",))
    # ldirectord uses netmask only with persistent
    assert build_desired(balancer(netmask="255.255.255.0")).service(KEY).netmask is None


def test_bad_values_never_reach_the_desired_state():
    # refused by the model when the configuration is read (config/ipvs.py), not at apply time
    # (this test asserted ValueErrors from build_desired before)
    with pytest.raises(ValueError, match="netmask '255.0.255.0'"):
        balancer(persistent=1000, netmask="255.0.255.0")
    with pytest.raises(ValueError, match="unknown scheduler flag 'bogus'"):
        balancer(schedflags=["bogus"])
    with pytest.raises(ValueError, match="needs scheduler sh"):
        balancer(schedflags=["sh-port"])


def test_fwmark_and_udp_keys():
    b = Balancer(virtual=[
        {"fwmark": 5, "reals": [{"address": "198.18.1.1", "port": 80}]},
        {"address": "198.18.0.10", "port": 53, "protocol": "udp", "reals": [{"address": "198.18.1.1"}]},
    ])
    d = build_desired(b)
    assert d.keys == ("FWM 5", "UDP 198.18.0.10:53")
    assert d.service("UDP 198.18.0.10:53").reals[0].port == 53
    fw = b.virtual[0]
    assert fw.real_key(Balancer(virtual=[{"fwmark": 5, "reals": [{"address": "198.18.1.1"}]}]).virtual[0].reals[0]) \
        == RealKey("FWM 5", "198.18.1.1", 0)  # ipvsadm: a fwmark real without a port has port 0


def test_round_trip_and_diff():
    d1 = build_desired(balancer())
    assert DesiredState.from_dict(d1.to_dict()) == d1
    d2 = build_desired(balancer(), {R1: False})
    dd = diff(d1, d2)
    assert dd.added == () and dd.removed == () and len(dd.changed) == 1
    assert diff(d1, d1).changed == ()
    assert diff(DesiredState(), d1).added == d1.services
    assert build_desired(None) == DesiredState()


def test_plain_tuples_and_bools_are_read_as_keys_and_facts():
    s = build_desired(balancer(), {(KEY, "198.18.1.1", 80): RealHealth(True, 9),
                                   (KEY, "198.18.1.2", 8080): False}).service(KEY)
    assert [(r.weight, r.status) for r in s.reals] == [(9, "up"), (1, "down")]


# --------------------------------------------------------------------------- quorum (keepalived)

def test_quorum_hysteresis():
    vs = balancer(quorum=4, hysteresis=1).virtual[0]
    assert next_quorum(vs, 3, True) is True  # 3 >= 4-1: kept
    assert next_quorum(vs, 2, True) is False  # below 3: lost
    assert next_quorum(vs, 4, False) is False  # needs 5 to come back
    assert next_quorum(vs, 5, False) is True
    assert next_quorum(balancer().virtual[0], 0, True) is True  # quorum 0 = off


def test_quorum_lost_at_zero_weight_even_within_the_hysteresis():
    # keepalived update_quorum_state: `!weight_sum || weight_sum < threshold`
    vs = balancer(quorum=1, hysteresis=1).virtual[0]
    assert next_quorum(vs, 0, True) is False


def test_quorum_at_start_needs_quorum_plus_hysteresis():
    # keepalived set_quorum_states: quorum_state_up = weight >= quorum + hysteresis
    vs = balancer(quorum=4, hysteresis=1).virtual[0]
    assert next_quorum(vs, 4, None) is False and next_quorum(vs, 5, None) is True


def test_quorum_lost_puts_the_fallback_in_place_of_the_reals():
    # keepalived update_quorum_state -> perform_quorum_state(vs, false): alive reals removed,
    # sorry server added
    b = balancer(quorum=5)
    s = build_desired(b, memory={KEY: ServiceMemory(quorum_up=False)}).service(KEY)
    assert [r.status for r in s.reals] == ["down", "down"]
    assert [r.address for r in s.installed] == ["127.0.0.1"]
    # without a fallback the reals stay (only notify_down runs)
    b = Balancer(virtual=[{"address": "198.18.0.10", "port": 80, "quorum": 5, "reals": [{"address": "198.18.1.1"}]}])
    assert build_desired(b, memory={KEY: ServiceMemory(quorum_up=False)}).service(KEY).reals[0].status == "up"


def test_quorum_withdrawal_of_quiescent_reals_sets_weight_zero():
    # keepalived ipvs_cmd: a DELDEST of a real with inhibit_on_failure (quiescent) is an
    # EDITDEST to weight 0, so the withdrawn alive reals stay in the table at weight 0
    s = build_desired(balancer(quorum=5, quiescent=True), memory={KEY: ServiceMemory(quorum_up=False)}).service(KEY)
    assert statuses(s) == [("198.18.1.1", "quiescent", 0), ("198.18.1.2", "quiescent", 0)]
    assert s.fallback is not None


# --------------------------------------------------------------------------- the core

def cmds(actions):
    return [(a.command, a.args) for a in actions if isinstance(a, RunCommand)]


def test_core_start_applies_and_runs_the_fallbackcommand_once():
    core = DesiredStateCore(balancer(fallbackcommand="/usr/local/bin/fb"))
    actions = core.start(0)
    assert isinstance(actions[0], Apply) and actions[0].desired == core.desired == build_desired(core.balancer)
    # ldirectord ld_start ends in fallback_on/fallback_off -> do_fallback_command for the state now
    assert cmds(actions) == [("/usr/local/bin/fb", ("stop", "198.18.0.10:80", "tcp"))]


def test_fallbackcommand_start_stop_on_change_only():
    # ldirectord do_fallback_command: `cmd start|stop vip:vport protocol`, not repeated
    core = DesiredStateCore(balancer(fallbackcommand="/usr/local/bin/fb"))
    core.start(0)
    assert cmds(core.on_health(R1, False, 10)) == []
    actions = core.on_health(R2, False, 20)
    assert cmds(actions) == [("/usr/local/bin/fb", ("start", "198.18.0.10:80", "tcp"))]
    assert [a for a in actions if isinstance(a, FallbackChanged)] == [FallbackChanged(KEY, True, "127.0.0.1:80")]
    assert core.on_health(R2, False, 30) == []  # nothing new: no action at all
    actions = core.on_health(R1, True, 40)
    assert cmds(actions) == [("/usr/local/bin/fb", ("stop", "198.18.0.10:80", "tcp"))]
    assert FallbackChanged(KEY, False, "127.0.0.1:80") in actions


def test_a_fact_that_changes_nothing_applies_nothing():
    core = DesiredStateCore(balancer())
    core.start(0)
    assert core.on_health(R1, RealHealth(True, None, "ok", 5), 5) == []
    [a] = core.on_health(R1, RealHealth(True, 2, "exit 4", 6), 6)  # a new dynamic weight
    assert isinstance(a, Apply) and a.desired.service(KEY).reals[0].weight == 2


def test_core_quorum_commands_and_withdrawal():
    core = DesiredStateCore(balancer(quorum=4, hysteresis=0, quorum_up="/bin/qup", quorum_down="/bin/qdown"))
    assert cmds(core.start(0)) == []  # keepalived: starting with quorum up notifies nothing
    actions = core.on_health(R1, False, 10)  # 1 < 4: lost
    assert cmds(actions) == [("/bin/qdown", ())]
    assert any(isinstance(a, QuorumChanged) and not a.up and a.weight == 1 for a in actions)
    assert [r.address for r in core.desired.service(KEY).installed] == ["127.0.0.1"]
    actions = core.on_health(R1, True, 20)  # 4 >= 4: gained
    assert cmds(actions) == [("/bin/qup", ())]
    assert core.desired.service(KEY).fallback is None


def test_core_starting_with_quorum_down_runs_quorum_down_with_a_sorry_server():
    # keepalived update_quorum_state(init): "Starting with quorum down" and the notify, only when
    # a sorry server exists
    b = balancer(alpha=True, quorum=1, quorum_down="/bin/qdown")
    assert cmds(DesiredStateCore(b).start(0)) == [("/bin/qdown", ())]
    b2 = Balancer(virtual=[{"address": "198.18.0.10", "port": 80, "alpha": True, "quorum": 1,
                            "quorum_down": "/bin/qdown", "reals": [{"address": "198.18.1.1"}]}])
    assert cmds(DesiredStateCore(b2).start(0)) == []


def test_readdquiescent_after_a_removal_from_outside():
    # ldirectord _remove_service: a quiescent real absent from the table when it goes down is
    # added back at weight 0 only with readdquiescent ("Readd Quiescent"); _service_up adds it
    # again when it comes back
    for readd, expect in ((False, ("198.18.1.1", "down", 3)), (True, ("198.18.1.1", "quiescent", 0))):
        core = DesiredStateCore(balancer(quiescent=True, readdquiescent=readd))
        core.start(0)
        core.removed(R1, 5)
        assert statuses(core.desired.service(KEY))[0][1] == "down"  # out of the table
        assert core.on_health(R1, True, 6) == []  # no change of its verdict: ldirectord does nothing
        core.on_health(R1, False, 10)
        assert statuses(core.desired.service(KEY))[0] == expect, readd
        core.on_health(R1, True, 20)
        assert statuses(core.desired.service(KEY))[0] == ("198.18.1.1", "up", 3)


def test_reload_keeps_the_health_of_reals_still_configured():
    core = DesiredStateCore(balancer())
    core.start(0)
    core.on_health(R1, False, 10)
    other = balancer(reals=[{"address": "198.18.1.1", "weight": 5, "method": "masq"}])
    actions = core.reload(other, 20)
    assert isinstance(actions[0], Apply)
    assert statuses(core.desired.service(KEY)) == [("198.18.1.1", "down", 5)]
    assert R2 not in core.health
    assert core.reload(other, 30) == []  # the same configuration again: nothing to do
    assert core.reload(None, 40) == [Apply(DesiredState())]


def test_facts_of_unknown_reals_and_before_start_are_kept_or_dropped_quietly():
    core = DesiredStateCore(balancer())
    assert core.on_health(R1, False, 0) == []  # before start: remembered, nothing applied
    assert core.on_health(RealKey("TCP 198.18.0.99:80", "198.18.1.1", 80), False, 0) == []
    assert statuses(build_desired(core.balancer, core.health).service(KEY))[0][1] == "down"
    core.start(1)
    assert statuses(core.desired.service(KEY))[0][1] == "down"


def test_vs_real_port_and_key_are_the_one_key():
    vs = VirtualService(address="198.18.0.10", port=80, reals=[{"address": "198.18.1.1"},
                                                                {"address": "198.18.1.2", "port": 81}])
    assert [vs.real_port(r) for r in vs.reals] == [80, 81]
    assert str(vs.real_key(vs.reals[0])) == "198.18.1.1:80 of TCP 198.18.0.10:80"


# --------------------------------------------------------------------------- maintenance

def test_drain_keeps_weight_zero_disable_removes_enable_hands_back():
    # HAProxy set server state drain | maint | ready
    core = DesiredStateCore(balancer(quiescent=False))
    core.start(0)
    out = core.set_maintenance({R1: "drain"}, 10)
    s = out[0].desired.service(KEY)
    assert isinstance(out[0], Apply) and statuses(s)[0] == ("198.18.1.1", "quiescent", 0)
    assert [r.address for r in s.installed] == ["198.18.1.1", "198.18.1.2"]
    s = core.set_maintenance({R1: "disabled"}, 20)[0].desired.service(KEY)
    assert statuses(s)[0][1] == "down" and [r.address for r in s.installed] == ["198.18.1.2"]
    s = core.set_maintenance({}, 30)[0].desired.service(KEY)
    assert statuses(s)[0] == ("198.18.1.1", "up", 3)
    assert core.set_maintenance({}, 40) == []  # nothing changed, nothing to apply


def test_drain_of_a_failed_real_follows_its_check():
    core = DesiredStateCore(balancer(quiescent=False))
    core.start(0)
    core.on_health(R1, RealHealth(False, reason="refused"), 5)
    core.set_maintenance({R1: "drain"}, 10)
    assert statuses(core.desired.service(KEY))[0][1] == "down"
    core.on_health(R1, RealHealth(True), 20)
    assert statuses(core.desired.service(KEY))[0] == ("198.18.1.1", "quiescent", 0)


def test_every_real_in_maintenance_brings_the_sorry_server_and_its_command():
    # a real in maintenance is not up for the fallback (as ldirectord's maintenancedir forces it
    # down) nor for the fallbackcommand
    core = DesiredStateCore(balancer(fallbackcommand="/bin/sorry"))
    core.start(0)
    out = core.set_maintenance({R1: "drain", R2: "disabled"}, 10)
    s = core.desired.service(KEY)
    assert s.fallback is not None
    assert any(isinstance(a, RunCommand) and a.args[0] == "start" for a in out), out
    assert any(isinstance(a, FallbackChanged) and a.on for a in out), out
    out = core.set_maintenance({R1: "drain"}, 20)
    assert core.desired.service(KEY).fallback is None
    assert any(isinstance(a, RunCommand) and a.args[0] == "stop" for a in out), out


def test_maintenance_is_kept_across_reload():
    core = DesiredStateCore(balancer())
    core.start(0)
    core.set_maintenance({R2: "disabled"}, 10)
    core.reload(balancer(scheduler="rr"), 20)
    assert statuses(core.desired.service(KEY))[1][1] == "down"
    assert core.maintenance == {R2: "disabled"}


def test_quorum_weight_leaves_out_reals_in_maintenance():
    core = DesiredStateCore(balancer(quorum=4, quorum_down="/bin/qdown", quorum_up="/bin/qup"))
    core.start(0)
    out = core.set_maintenance({R1: "drain"}, 10)  # 1 of 4 left
    assert any(isinstance(a, QuorumChanged) and not a.up and a.weight == 1 for a in out), out
    assert any(isinstance(a, RunCommand) and a.command == "/bin/qdown" for a in out), out


# --------------------------------------------------------------------------- who runs the commands

def test_an_inactive_node_runs_no_command_and_takes_over_with_the_current_state():
    core = DesiredStateCore(balancer(fallbackcommand="/bin/sorry", quorum=4, quorum_down="/bin/qdown"),
                            active=False)
    start = core.start(0)
    assert not any(isinstance(a, RunCommand) for a in start), start
    out = core.on_health_many({R1: False, R2: False}, 10)
    assert not any(isinstance(a, RunCommand) for a in out), out
    assert core.desired.service(KEY).fallback is not None  # the table follows all the same
    took = core.set_active(True, 20)
    assert [(a.command, a.args[:1]) for a in took] == [("/bin/qdown", ()), ("/bin/sorry", ("start",))], took
    assert core.set_active(True, 30) == []  # once
    # active now: the next change runs its command
    out = core.on_health(R1, True, 40)
    assert any(isinstance(a, RunCommand) and a.args[0] == "stop" for a in out), out
