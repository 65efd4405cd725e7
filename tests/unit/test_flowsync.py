"""balancer/flowsync.py, the pure part of flow sync: the sender's queue (batching, dedup, bound),
the backup's store (expiry, bound, sequence, snapshots), the wire format (auth, corruption),
message planning and the nft element commands."""

from __future__ import annotations

import pytest

from hadirector.balancer import flowsync as fs
from hadirector.cluster.auth import Authenticator
from hadirector.dataplane import nflog

AUTH = Authenticator("sha1", b"lab-secret", 1)
FLOW = "netdev hadirector_eth0 flow_tcp_198.18.0.100_80_198.18.0.11_80"
PERSIST = "netdev hadirector_eth0 persist_tcp_198.18.0.100_80_198.18.0.11_80"


def e(port: int, s: str = FLOW, addr: str = "198.18.0.7") -> fs.Elem:
    return fs.Elem(s, addr, port)


def test_sender_batches_by_time_and_count_and_dedups():
    s = fs.SyncSender(interval=20, max_batch=3)
    s.learn(e(1), fs.ADD, 900_000, now=1000)
    assert not s.due(1010) and s.take(1010) == []
    assert s.next_due(1010) == 10
    s.learn(e(1), fs.DEL, 0, now=1015)  # the later wins
    assert s.counters.deduped == 1
    batch = s.take(1020)
    assert [(x.elem, x.op) for x in batch] == [(e(1), fs.DEL)]
    assert s.take(1040) == [] and s.next_due(1040) is None
    for p in (2, 3, 4):
        s.learn(e(p), fs.ADD, 900_000, now=2000)
    assert s.due(2000)  # max_batch waiting: now
    b = s.take(2005)
    assert {x.elem.port for x in b} == {2, 3, 4}
    assert all(x.remaining == 900_000 - 5 and x.age == 5 for x in b)


def test_sender_queue_is_bounded():
    s = fs.SyncSender(max_pending=2)
    assert s.learn(e(1), fs.ADD, 1, 0) and s.learn(e(2), fs.ADD, 1, 0)
    assert not s.learn(e(3), fs.ADD, 1, 0)
    assert s.counters.dropped == 1 and len(s.pending) == 2
    assert s.learn(e(1), fs.ADD, 5, 0)  # an element already queued still updates


def msg(kind, seq, entries=(), epoch=7, **kw):
    return fs.Message(kind, "dir-a", epoch, seq, wall=10_000, entries=list(entries), **kw)


def test_store_expires_entries_when_the_active_would():
    st = fs.SyncStore()
    st.receive(msg(fs.BATCH, 1, [fs.Entry(e(1), fs.ADD, 5000, 12), fs.Entry(e(2), fs.ADD, 100, 0)]),
               now=1000, wall=10_003)
    assert dict(st.entries(1050)) == {e(1): 4950, e(2): 50}
    assert st.lags == [15, 3]  # age + transit (wall clocks)
    st.expire(1100)
    assert dict(st.entries(1100)) == {e(1): 4900} and st.counters.expired == 1
    st.receive(msg(fs.BATCH, 2, [fs.Entry(e(1), fs.DEL, 0, 0)]), now=1200, wall=10_000)
    assert st.entries(1200) == []


def test_store_sequence_replay_gap_and_new_run():
    st = fs.SyncStore()
    assert st.receive(msg(fs.BATCH, 5), 0, 0)
    assert not st.receive(msg(fs.BATCH, 5), 0, 0)  # replayed
    assert st.counters.dropped_stale == 1
    st.need_snapshot = False
    st.receive(msg(fs.BATCH, 8), 0, 0)  # 6 and 7 lost
    assert st.counters.gaps == 2 and st.need_snapshot
    assert st.wants_snapshot(100) and not st.wants_snapshot(200)  # asked; wait before again
    assert st.wants_snapshot(100 + st.snapshot_retry)
    st.need_snapshot = False
    st.receive(msg(fs.BATCH, 1, epoch=8), 0, 0)  # the active restarted: a new run
    assert st.need_snapshot and st.last_seq == 1


def test_store_is_bounded():
    st = fs.SyncStore(max_entries=2)
    st.receive(msg(fs.BATCH, 1, [fs.Entry(e(p), fs.ADD, 1000, 0) for p in (1, 2, 3)]), 0, 0)
    assert len(st) == 2 and st.counters.dropped_full == 1


def test_a_complete_snapshot_replaces_the_store_a_partial_one_does_not():
    st = fs.SyncStore()
    st.receive(msg(fs.BATCH, 1, [fs.Entry(e(p), fs.ADD, 1000, 0) for p in (1, 2)]), 0, 0)
    st.receive(msg(fs.SNAPSHOT, 2, [fs.Entry(e(3), fs.ADD, 1000, 0)], snap=1, part=0, parts=2), 0, 0)
    assert {x.port for x, _ in st.entries(0)} == {1, 2, 3}  # incomplete: the union
    st.receive(msg(fs.BATCH, 3, [fs.Entry(e(4), fs.ADD, 1000, 0)]), 0, 0)  # newer than the listing
    st.receive(msg(fs.SNAPSHOT, 4, [fs.Entry(e(1), fs.ADD, 800, 0)], snap=1, part=1, parts=2), 10, 0)
    assert dict(st.entries(10)) == {e(1): 800, e(3): 990, e(4): 990}  # 2 is gone on the active
    assert st.counters.snapshots == 1 and not st.need_snapshot
    # a snapshot whose second part is lost leaves everything
    st.receive(msg(fs.SNAPSHOT, 5, [], snap=2, part=0, parts=2), 20, 0)
    assert len(st) == 3


def test_wire_round_trip_ipv4_ipv6_persistence():
    entries = [fs.Entry(e(40512), fs.ADD, 899_000, 3), fs.Entry(e(-1, PERSIST, "198.18.0.0"), fs.ADD, 60_000, 0),
               fs.Entry(fs.Elem(FLOW + "6", "2001:2::7", 1), fs.DEL, 0, 1)]
    m = msg(fs.BATCH, 9, entries)
    data = fs.encode(m, AUTH)
    got = fs.decode(data, AUTH)
    assert (got.kind, got.node, got.epoch, got.seq, got.wall) == (fs.BATCH, "dir-a", 7, 9, 10_000)
    assert got.entries == entries and got.size == len(data)
    # an IPv4 flow entry is 17 bytes
    assert fs.entry_size(entries[0]) == 17


@pytest.mark.parametrize("mutate, why", [
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "wrong MAC"),
    (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], "wrong MAC"),
    (lambda d: b"XXXX" + d[4:], "not a flow-sync"),
    (lambda d: d[:10], "not a flow-sync"),
])
def test_wire_refuses_corrupt_and_forged(mutate, why):
    data = fs.encode(msg(fs.BATCH, 1, [fs.Entry(e(1), fs.ADD, 1, 0)]), AUTH)
    with pytest.raises(fs.CodecError, match=why):
        fs.decode(mutate(data), AUTH)
    with pytest.raises(fs.CodecError, match="wrong MAC"):
        fs.decode(data, Authenticator("sha1", b"other", 1))
    with pytest.raises(fs.CodecError, match="bad auth"):
        fs.decode(data, Authenticator("sha256", b"lab-secret", 1))


def test_plan_messages_fits_datagrams():
    entries = [fs.Entry(e(p), fs.ADD, 1000, 0) for p in range(1000)]
    oh = fs.overhead("dir-a", AUTH)
    groups = fs.plan_messages(entries, oh)
    assert sum(len(g) for g in groups) == 1000
    for g in groups:
        size = len(fs.encode(msg(fs.SNAPSHOT, 1, g), AUTH))
        assert size <= fs.MAX_DATAGRAM
    assert len(groups) == -(-1000 // len(groups[0]))  # full datagrams but the last


def test_nft_elements_carry_the_time_left_in_whole_seconds():
    cmds = fs.to_nft_elements([(e(1), 1500), (e(-1, PERSIST, "198.18.0.0"), 60_000),
                               (e(2), 0), (fs.Elem("netdev other x", "198.18.0.1", 1), 5000)],
                              {FLOW: 900, PERSIST: 60})
    by = {c["add"]["element"]["name"]: c["add"]["element"]["elem"] for c in cmds}
    assert by == {FLOW.split()[2]: [{"elem": {"val": {"concat": ["198.18.0.7", 1]}, "timeout": 900, "expires": 2}}],
                  PERSIST.split()[2]: [{"elem": {"val": "198.18.0.0", "timeout": 60, "expires": 60}}]}


def test_nflog_parse_and_flow_of():
    ip = bytes.fromhex("4500003cc66840004006d624c6120901c6120909b1580050d17b447800000000a002faf0")
    body = b"\0\0\0\0" + nflog._attr(nflog.NFULA_PREFIX, b"N eth0 x\0") + nflog._attr(nflog.NFULA_PAYLOAD, ip)
    hdr = nflog._NLH.pack(nflog._NLH.size + len(body), (nflog.NFNL_SUBSYS_ULOG << 8), 0, 0, 0)
    assert nflog.parse(hdr + body + hdr + body) == [("N eth0 x", ip)] * 2
    assert nflog.flow_of(ip) == ("198.18.9.1", 0xB158)
    assert nflog.flow_of(b"\x45" + b"\0" * 8 + b"\x01" + b"\0" * 20) is None  # ICMP


# ----------------------------------------------------------------------------- the renderer's part

from hadirector.balancer.persistence import PersistenceTable  # noqa: E402
from hadirector.balancer.schedulers import Dest  # noqa: E402
from hadirector.balancer.state import build_desired  # noqa: E402
from hadirector.config.model import Balancer  # noqa: E402
from hadirector.dataplane.nft_render import (Link, NftOptions, RenderEnv, hold_commands, is_ours,  # noqa: E402
                                             render, set_owners)
from hadirector.render.lvs import render_connections  # noqa: E402

VIP = "198.18.0.100"
ENV = RenderEnv(links={"198.18.0.11": Link("eth0", "02:00:00:00:00:11"),
                       "198.18.0.12": Link("eth0", "02:00:00:00:00:12")},
                dev_macs={"eth0": "02:00:00:00:00:02"}, vip_devs={VIP: "eth0"})


def _desired(**svc):
    return build_desired(Balancer.model_validate({"virtual": [{
        "address": VIP, "port": 80, "reals": [{"address": "198.18.0.11", "method": "gate", "weight": 3},
                                              {"address": "198.18.0.12", "method": "gate", "weight": 1}],
        **svc}]}))


def _rules(r, chain_prefix):
    t = r.tables[("netdev", "hadirector_eth0")]
    return [e for c, e in t.rules if c.startswith(chain_prefix)]


def test_sync_group_logs_new_and_closing_flows_and_names_the_sets():
    d = _desired(scheduler="wrr", persistent=60, netmask="255.255.255.0")
    assert not any("log" in x for e in _rules(render(d, ENV, NftOptions()), "new_") for x in e)
    r = render(d, ENV, NftOptions(sync_group=8848))
    logs = [x["log"] for e in _rules(r, "new_") for x in e if "log" in x]
    assert {l["prefix"] for l in logs} == {"N eth0 tcp_198.18.0.100_80_198.18.0.11_80",
                                          "N eth0 tcp_198.18.0.100_80_198.18.0.12_80"}
    assert all(l["group"] == 8848 for l in logs)
    assert any("log" in x and x["log"]["prefix"].startswith("F eth0 ") for e in _rules(r, "est_") for x in e)
    ss = r.sync["eth0 tcp_198.18.0.100_80_198.18.0.11_80"]
    assert ss.flow == "netdev hadirector_eth0 flow_tcp_198.18.0.100_80_198.18.0.11_80"
    assert ss.fin.startswith("netdev hadirector_eth0 fin_") and ss.persist.endswith("persist_tcp_198.18.0.100_80_198.18.0.11_80")
    assert (ss.flow_timeout, ss.fin_timeout, ss.persist_timeout, ss.persist_prefix) == (900_000, 10_000, 60_000, 24)


def test_deterministic_schedulers_sync_no_flows():
    r = render(_desired(scheduler="sh"), ENV, NftOptions(sync_group=1))
    assert all(s.flow is None and s.persist is None for s in r.sync.values())
    assert not any("log" in x for e in _rules(r, "new_") + _rules(r, "est_") for x in e)
    r = render(_desired(scheduler="mh", persistent=5), ENV, NftOptions(sync_group=1))
    assert all(s.flow is None and s.persist is not None for s in r.sync.values())  # templates still


def test_hold_table_drops_tcp_to_dr_services():
    cmds = hold_commands(_desired())
    rule = [c["add"]["rule"] for c in cmds if "rule" in c.get("add", {})]
    assert len(rule) == 1 and rule[0]["family"] == "inet" and rule[0]["table"] == "hadirector_hold"
    assert rule[0]["expr"][-1] == {"drop": None}
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}} \
        in rule[0]["expr"]
    assert is_ours("inet", "hadirector_hold") and not is_ours("inet", "other")
    udp = build_desired(Balancer.model_validate({"virtual": [{"address": VIP, "port": 53, "protocol": "udp",
                                                              "reals": [{"address": "198.18.0.11", "method": "gate"}]}]}))
    assert hold_commands(udp) == []


def test_connection_table_in_ipvsadm_layout():
    d = _desired(scheduler="wrr", persistent=60)
    own = set_owners(d)
    svc, real, kind = own["persist_tcp_198.18.0.100_80_198.18.0.12_80"]
    assert (svc.port, real.address, kind) == (80, "198.18.0.12", "persist")
    rows = [{"protocol": "TCP", "expire_ms": 899_001, "state": "ESTABLISHED", "source": "198.18.0.10",
             "sport": 40512, "virtual": VIP, "vport": 80, "destination": "198.18.0.11", "dport": 80},
            {"protocol": "TCP", "expire_ms": 59_000, "state": "NONE", "source": "198.18.0.30",
             "sport": 0, "virtual": VIP, "vport": 80, "destination": "198.18.0.11", "dport": 80}]
    assert render_connections(rows) == (
        "IPVS connection entries\n"
        "pro expire state       source             virtual            destination\n"
        "TCP 15:00  ESTABLISHED 198.18.0.10:40512  198.18.0.100:80    198.18.0.11:80\n"
        "TCP 00:59  NONE        198.18.0.30:0      198.18.0.100:80    198.18.0.11:80\n")


def test_persistence_templates_tell_and_restore():
    seen = []
    t = PersistenceTable(60, 24)
    t.on_change = lambda k, d, exp: seen.append((k, d.key, exp))
    d1 = Dest("r1", 1, 80, 1)
    dest, tpl = t.schedule(0xC6120A07, 100.0, lambda: d1)
    t.attach(tpl, 100.0)
    assert seen == [(0xC6120A00, "r1", 160.0)]
    t.release(tpl, 130.0)
    assert seen[-1] == (0xC6120A00, "r1", 190.0)
    b = PersistenceTable(60, 24)
    b.restore(0xC6120A55, d1, 175.0)
    assert b.lookup(0xC6120A01, 170.0).dest is d1 and d1.persist == 2
    assert b.lookup(0xC6120A01, 176.0) is None


def test_survival_harness_stream_bytes_are_deterministic_by_offset():
    from hadirector.lab.httpd import stream_block
    whole = stream_block(0, 200_000)
    assert stream_block(65530, 20) == whole[65530:65550] and stream_block(131072, 5) == whole[131072:131077]
    assert whole[:65536] != whole[65536:131072]  # not periodic per block


def _nflog_msg(prefix: bytes, payload: bytes, extra: list[tuple[int, bytes]]) -> bytes:
    # the kernel's order (nfnetlink_log.c __build_packet_message): PACKET_HDR, PREFIX, ..., PAYLOAD
    attrs = nflog._attr(1, b"\x08\x00\x01\x00") + nflog._attr(nflog.NFULA_PREFIX, prefix + b"\0")
    attrs += b"".join(nflog._attr(k, v) for k, v in extra) + nflog._attr(nflog.NFULA_PAYLOAD, payload)
    body = b"\x02\0\0\0" + attrs
    return nflog._NLH.pack(nflog._NLH.size + len(body), nflog.NFNL_SUBSYS_ULOG << 8, 0, 0, 0) + body


def test_nflog_parse_flows_matches_parse_and_flow_of_with_remembered_layouts():
    ip = bytes.fromhex("4500003cc66840004006d624c6120901c6120909b1580050d17b447800000000a002faf0")
    ip2 = ip[:12] + bytes([198, 18, 9, 2]) + ip[16:20] + b"\x04\xd2" + ip[22:]
    ip6 = bytes([0x60, 0, 0, 0, 0, 20, 6, 64]) + bytes.fromhex("20010db8" + "0" * 23 + "7") + b"\0" * 16 + b"\x1f\x90\0\x50"
    icmp = b"\x45" + b"\0" * 8 + b"\x01" + b"\0" * 30
    ifidx, ts, hw = (4, b"\0\0\0\2"), (3, b"\0" * 16), (16, b"\0" * 14)
    pad = b"\0" * 8
    msgs = [_nflog_msg(b"N eth0 a", ip + pad, [ifidx, ts, hw]),
            _nflog_msg(b"N eth0 a", ip2 + pad, [ifidx, ts, hw]),     # same layout: remembered offset
            _nflog_msg(b"F eth0 a", ip2, [ifidx, ts, (16, b"\xff" * 22)]),  # same length, payload 8 bytes on
            _nflog_msg(b"N eth0 b", ip[:44] + b"\xff" * 4, [ifidx]),  # another length and payload size
            _nflog_msg(b"N eth0 a", icmp, [ifidx, ts, hw]),
            _nflog_msg(b"N eth0 6", ip6, [ifidx])]
    assert len(msgs[0]) == len(msgs[2])
    data = b"".join(msgs)
    want = [(p.encode(), *(nflog.flow_of(pl) or (None, 0))) for p, pl in nflog.parse(data)]
    assert [w[1:] for w in want] == [("198.18.9.1", 0xB158), ("198.18.9.2", 1234), ("198.18.9.2", 1234),
                                     ("198.18.9.1", 0xB158), (None, 0), ("2001:db8::7", 8080)]
    nflog._LAYOUTS.clear()
    assert nflog.parse_flows(data) == want  # the first pass walks and remembers
    assert nflog._LAYOUTS
    assert nflog.parse_flows(data) == want  # the second takes the remembered offsets
    assert nflog.parse_flows(data + b"\x01\x02", len(data)) == want  # `end` bounds it
    assert nflog.parse_flows(data[:-3]) == want[:-1]  # a truncated last message is not read


def test_sender_learn_many_is_learn_for_each():
    items = [(e(1), fs.ADD, 900_000), (e(2), fs.ADD, 900_000), (e(1), fs.DEL, 0), (e(3), fs.ADD, 5),
             (e(4), fs.ADD, 5)]
    one, many = fs.SyncSender(max_pending=3), fs.SyncSender(max_pending=3)
    for elem, op, timeout in items:
        one.learn(elem, op, timeout, now=1000)
    many.learn_many(items, now=1000)
    assert many.pending == one.pending and many.counters == one.counters and many.first_at == 1000
    assert (many.counters.deduped, many.counters.dropped) == (1, 1)
    assert type(many.take(1020, force=True)[0]) is fs.Entry
