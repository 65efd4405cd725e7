"""The messages behind the golden files in tests/fixtures/wire/ (shared by the tests and the
fixture writer)."""

from hadirector.cluster.auth import Authenticator
from hadirector.cluster.messages import (Announcement, Grant, GroupEntry, GroupState, Kind, Message,
                                         Status)

SAMPLES = {
    "heartbeat_sha256": (
        Message(Kind.HEARTBEAT, "prod", "alpha", 7, 42, 1000, 30000,
                Announcement(Status.ACTIVE, 2, 3,
                             (GroupEntry("web", GroupState.HELD),
                              GroupEntry("db", GroupState.NONE, to="beta")),
                             (Grant("beta", "mail", 5),), (), ("beta", "gamma"))),
        Authenticator("sha256", b"Hey!", 1),
        "heartbeat from alpha (gen 7, seq 42): holds web, handed db to beta, grants beta's claim 5 "
        "on mail, hears beta and gamma; HMAC-SHA256 key 'Hey!' index 1"),
    "update_md5": (
        Message(Kind.UPDATE, "prod", "beta", 3, 9, 2000, 10000,
                Announcement(Status.ACTIVE, 0, 1,
                             (GroupEntry("mail", GroupState.CLAIM, claim=5),
                              GroupEntry("web", GroupState.NONE, failed=True)),
                             (), ("db",), ("alpha",))),
        Authenticator("md5", b"Hello!", 3),
        "update from beta (gen 3, seq 9): claims mail (claim 5), failed web, asks to take over db, "
        "hears alpha; HMAC-MD5 key 'Hello!' index 3"),
    "leave_sha1": (
        Message(Kind.LEAVE, "prod", "gamma", 1, 1000, 1000, 30000,
                Announcement(Status.LEAVING, 1, 1, (), (), ())),
        Authenticator("sha1", b"s3cret", 2),
        "leave from gamma (gen 1, seq 1000), nothing held; HMAC-SHA1 key 's3cret' index 2"),
    "heartbeat_crc": (
        Message(Kind.HEARTBEAT, "lab", "n\u00f8de1", 1, 1, 100, 500,
                Announcement(Status.STARTING, 0, 0, (GroupEntry("vip", GroupState.STOPPING),), (), ())),
        Authenticator("crc", b"", 1),
        "heartbeat from the starting node 'n-o-slash-de1' (a UTF-8 name) stopping a stale vip; CRC-32 only"),
}
