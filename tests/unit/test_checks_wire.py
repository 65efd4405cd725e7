"""Wire encodings of the protocol checks, against published vectors where there are some."""

import hashlib

import pytest

from hadirector.checks.probes import ldap, mysql, pgsql, radius
from hadirector.checks.probes._wire import unescape
from hadirector.checks.probes.ping import checksum, echo_request


def test_scram_sha256_rfc7677_vector():
    s = pgsql.Scram("pencil", user="user", nonce="rOprNGfwEbeRWgbNEkqO")
    assert s.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = s.final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    s.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(pgsql.PgError, match="signature"):
        s.verify("v=AAAA")


def test_scram_rejects_foreign_nonce():
    s = pgsql.Scram("pw", nonce="abc")
    with pytest.raises(pgsql.PgError, match="nonce"):
        s.final("r=xyz,s=AAAA,i=4096")


def test_mysql_native_password_is_what_the_server_checks():
    scramble = bytes(range(1, 21))
    token = mysql.native_password("s3cret", scramble)
    stage1 = hashlib.sha1(b"s3cret").digest()
    stored = hashlib.sha1(stage1).digest()  # mysql.user authentication_string without '*'
    recovered = bytes(a ^ b for a, b in zip(token, hashlib.sha1(scramble + stored).digest()))
    assert hashlib.sha1(recovered).digest() == stored
    assert mysql.native_password("", scramble) == b""


def test_mysql_greeting_parse_and_error_packet():
    greeting = (b"\x0a" + b"10.11.19-MariaDB\x00" + b"\x01\x00\x00\x00" + b"abcdefgh" + b"\x00"
                + b"\xff\xf7" + b"\x21" + b"\x02\x00" + b"\xff\x81" + b"\x15" + b"\x00" * 10
                + b"ijklmnopqrst\x00" + b"mysql_native_password\x00")
    version, scramble, plugin, caps = mysql.parse_greeting(greeting)
    assert version.startswith("10.11") and scramble == b"abcdefghijklmnopqrst" and plugin == "mysql_native_password"
    with pytest.raises(mysql.MySQLError, match="1130"):
        mysql.parse_greeting(b"\xff\x6a\x04Host '127.0.0.1' is not allowed to connect")


def test_radius_password_hiding_roundtrip():
    secret, auth = b"testing123", bytes(range(16))
    for pw in (b"", b"short", b"exactly16bytes!!", b"a password longer than sixteen bytes"):
        hidden = radius.hide_password(pw, secret, auth)
        assert len(hidden) % 16 == 0 and len(hidden) >= 16
        out, prev = b"", auth
        for i in range(0, len(hidden), 16):
            key = hashlib.md5(secret + prev).digest()
            out += bytes(a ^ b for a, b in zip(hidden[i:i + 16], key))
            prev = hidden[i:i + 16]
        assert out.rstrip(b"\x00") == pw


def test_radius_reply_authenticator_checked():
    secret, auth = b"s", bytes(16)
    body = b"\x02\x07\x00\x14"
    good = body + hashlib.md5(body + auth + secret).digest()
    assert radius.verify_reply(good, 7, auth, secret) == radius.ACCESS_ACCEPT
    with pytest.raises(ValueError, match="secret"):
        radius.verify_reply(body + bytes(16), 7, auth, secret)
    with pytest.raises(ValueError, match="belong"):
        radius.verify_reply(good, 8, auth, secret)


def test_ldap_ber_roundtrip():
    msg = ldap.bind_request(1, "cn=admin,dc=example,dc=test", "pw")
    tag, body, end = ldap.parse_tlv(msg)
    assert tag == 0x30 and end == len(msg)
    _, msgid, pos = ldap.parse_tlv(body)
    optag, op, _ = ldap.parse_tlv(body, pos)
    assert msgid == b"\x01" and optag == 0x60
    long = ldap.tlv(0x04, b"x" * 300)
    assert long[:4] == b"\x04\x82\x01\x2c" and ldap.parse_tlv(long)[1] == b"x" * 300
    with pytest.raises(ValueError):
        ldap.parse_tlv(b"\x04\x85\x00")


def test_icmp_checksum_and_request():
    pkt = echo_request(False, 0x1234, 1, b"abc")
    assert checksum(pkt) == 0  # a packet with its checksum in place sums to zero (RFC 1071)
    assert echo_request(True, 1, 1, b"")[0] == 128


def test_unescape():
    assert unescape(r"PING\r\n") == "PING\r\n"
    assert unescape(r"\x01\x7fA\\n") == "\x01\x7fA\\n"
    assert unescape(r"bad \xZZ") == r"bad \xZZ"
