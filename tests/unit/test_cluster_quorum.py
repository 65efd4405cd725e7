"""cluster/quorum.py: votequorum's arithmetic, two_node, wait_for_all and the witness vote."""

import pytest

from hadirector.cluster.quorum import FREEZE, OK, STOP, Quorum
from hadirector.config.model import Quorum as QuorumConfig

THREE = ("alpha", "beta", "gamma")


def q(nodes=THREE, local="alpha", **cfg):
    return Quorum(QuorumConfig.model_validate(cfg), nodes, local, 0)


def test_three_nodes_need_two():
    x = q()
    assert (x.quorate, x.verdict.votes, x.verdict.expected, x.verdict.needed) == (False, 1, 3, 2)
    assert x.mode == STOP
    assert x.set_members({"beta"}, 10)
    assert x.quorate and x.mode == OK
    assert x.set_members({"beta", "gamma"}, 20)  # votes changed, still quorate
    assert x.quorate and x.verdict.votes == 3
    assert x.set_members(set(), 30)
    assert not x.quorate and x.snapshot(40)["since_age_ms"] == 10
    assert not x.set_members(set(), 50)  # no change, no news


def test_four_nodes_half_is_not_a_majority():
    x = q(nodes=THREE + ("delta",))
    x.set_members({"beta"}, 1)
    assert (x.verdict.votes, x.verdict.needed, x.quorate) == (2, 3, False)
    x.set_members({"beta", "gamma"}, 2)
    assert x.quorate


def test_policies_give_the_arbiter_its_mode():
    assert q(no_quorum_policy="freeze").mode == FREEZE
    ignore = q(no_quorum_policy="ignore")
    assert not ignore.quorate and ignore.mode == OK  # computed and shown, not enforced


def test_votes_and_expected_votes():
    x = q(votes={"alpha": 3})  # 5 votes in all, 3 needed: alpha alone is quorate
    assert (x.verdict.expected, x.verdict.needed, x.quorate) == (5, 3, True)
    y = q(expected_votes=7)
    y.set_members({"beta", "gamma"}, 1)
    assert (y.verdict.votes, y.verdict.needed, y.quorate) == (3, 4, False)
    z = q(expected_votes=1)  # never below the votes present (votequorum calculate_quorum q2)
    z.set_members({"beta", "gamma"}, 1)
    assert (z.verdict.expected, z.verdict.needed) == (3, 2)


def test_two_nodes_keep_heartbeats_behaviour():
    x = q(nodes=("alpha", "beta"))
    assert x.two_node and x.quorate and x.verdict.needed == 1
    # votes or expected_votes turn the majority rule on
    assert not q(nodes=("alpha", "beta"), votes={"beta": 2}).quorate
    assert not q(nodes=("alpha", "beta"), expected_votes=2).quorate


def test_one_node_is_quorate():
    assert q(nodes=("alpha",)).quorate


def test_wait_for_all_at_start_and_after_quorum_loss():
    x = q(wait_for_all=True)
    x.set_members({"beta"}, 1)
    assert not x.quorate and x.verdict.waiting_for_all  # a majority, but not all seen yet
    x.set_members({"beta", "gamma"}, 2)
    assert x.quorate and not x.verdict.waiting_for_all
    x.set_members({"beta"}, 3)
    assert x.quorate  # all were seen once: the majority is enough
    x.set_members(set(), 4)
    assert not x.quorate and x.verdict.waiting_for_all  # votequorum are_we_quorate re-arms
    x.set_members({"beta"}, 5)
    assert not x.quorate


def test_two_nodes_wait_for_all():
    x = q(nodes=("alpha", "beta"), wait_for_all=True)
    assert not x.quorate
    x.set_members({"beta"}, 1)
    assert x.quorate
    x.set_members(set(), 2)
    assert x.quorate  # two_node: one vote is quorum once both were seen


def test_witness_two_nodes():
    x = q(nodes=("alpha", "beta"), device={"host": "198.18.0.9", "tls": False})
    assert not x.two_node and x.verdict.expected == 3 and x.verdict.witness == "unknown"
    assert not x.quorate
    x.set_members({"beta"}, 1)
    assert x.quorate  # 2 of 3 without the witness: losing only the witness moves nothing
    x.set_members(set(), 2)
    assert not x.quorate
    assert x.on_witness(True, 3)
    assert x.quorate and x.verdict.votes == 2 and x.verdict.witness == "vote"
    assert x.on_witness(False, 4)
    assert not x.quorate and x.verdict.witness == "no vote"
    assert x.on_witness(None, 5) and x.verdict.witness == "unknown"
    assert not x.on_witness(None, 6)


def test_witness_errors():
    with pytest.raises(ValueError, match="no quorum device"):
        q().on_witness(True, 1)
    with pytest.raises(ValueError, match="True, False or None"):
        q(device={"host": "qnetd"}).on_witness(1, 1)


def test_unknown_members_do_not_count():
    x = q()
    x.set_members({"mallory"}, 1)
    assert x.verdict.votes == 1 and x.snapshot(1)["members"] == ["alpha"]


# ---------------------------------------------------------------- [cluster.quorum] in TOML

from hadirector.config import ConfigError  # noqa: E402
from hadirector.config.errors import Collector  # noqa: E402
from hadirector.config.native import dump_toml, load_toml_text  # noqa: E402

TOML = """
[cluster]
nodes = ["a", "b", "c"]
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2"]
[cluster.auth]
method = "sha256"
key = "k"
"""


def problems(text):
    col = Collector()
    with pytest.raises(ConfigError):
        load_toml_text(text, "x.toml", col)
    return [str(p) for p in col.errors]


def test_toml_quorum_loads_and_round_trips():
    cfg = load_toml_text(TOML + '[cluster.quorum]\nno_quorum_policy = "freeze"\nwait_for_all = true\n'
                         'votes = { a = 2 }\n[cluster.quorum.device]\nhost = "qnetd.example"\n'
                         'algorithm = "lms"\ntls = false\n')
    qc = cfg.cluster.quorum
    assert (qc.no_quorum_policy, qc.wait_for_all, qc.votes, qc.device.port, qc.device.algorithm,
            qc.device.tls) == ("freeze", True, {"a": 2}, 5403, "lms", False)
    assert load_toml_text(dump_toml(cfg)) == cfg
    assert load_toml_text(TOML).cluster.quorum.no_quorum_policy == "stop"  # the default


def test_toml_quorum_errors_name_key_paths():
    errs = problems(TOML + '[cluster.quorum]\nno_quorum_policy = "suicide"\nvotes = { z = 1 }\n'
                    'expected_votes = 0\n[cluster.quorum.device]\nhost = "q"\nport = 0\n')
    joined = "\n".join(errs)
    assert "cluster.quorum.no_quorum_policy:" in joined
    assert "cluster.quorum.expected_votes:" in joined
    assert "cluster.quorum.device.port:" in joined
    errs = problems(TOML + '[cluster.quorum]\nvotes = { z = 1 }\n')
    assert errs == ["cluster.quorum.votes.z: 'z' is not a cluster node; nodes are a, b, c"]
    errs = problems(TOML + '[cluster.quorum]\nvotes = { a = 0, b = 0, c = 0 }\n')
    assert errs == ["cluster.quorum.votes: every node has 0 votes: the cluster could never be quorate"]
    assert any(e.startswith("cluster.quorum.device.host:") for e in problems(TOML + "[cluster.quorum.device]\n"))
    assert problems(TOML + "[cluster.quorum]\nexpected_votes = 1\n") == [
        "cluster.quorum.expected_votes: expected_votes 1 lets two partitions be quorate at once "
        "(1 of the 3 votes each); use at least 2"]
    four = TOML.replace('"c"]', '"c", "d"]')
    assert problems(four + "[cluster.quorum]\nexpected_votes = 3\n") == [
        "cluster.quorum.expected_votes: expected_votes 3 lets two partitions be quorate at once "
        "(2 of the 4 votes each); use at least 4"]
    assert load_toml_text(TOML + "[cluster.quorum]\nexpected_votes = 2\n")  # 2 of 3 is safe


def test_check_says_how_quorum_is_decided():
    from hadirector.config.summary import quorum_line
    assert quorum_line(load_toml_text(TOML).cluster) == "quorum: majority, 2 of 3 votes; no_quorum_policy stop"
    two = TOML.replace('nodes = ["a", "b", "c"]', 'nodes = ["a", "b"]')
    assert quorum_line(load_toml_text(two).cluster) == \
        "quorum: two nodes, one vote is quorum (leases and probing decide)"
    witness = load_toml_text(two + '[cluster.quorum]\nwait_for_all = true\n[cluster.quorum.device]\n'
                             'host = "198.18.0.9"\ntls = false\n')
    assert quorum_line(witness.cluster) == ("quorum: majority, 2 of 3 votes, witness qnetd "
                                            "198.18.0.9:5403 (ffsplit, no TLS), wait_for_all; "
                                            "no_quorum_policy stop")
