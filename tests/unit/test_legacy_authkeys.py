"""authkeys: `auth N` + `N method [key]`, heartbeat's permission rule, crc's warning."""

from __future__ import annotations

import pytest

from legacy_util import load, make_ha_dir, one_error


@pytest.mark.parametrize("text,method,key,index", [
    ("auth 1\n1 sha1 s3cret\n", "sha1", "s3cret", 1),
    ("auth 3\n3 md5 Hello!\n", "md5", "Hello!", 3),
    ("# keys\nauth 2\n1 md5 one\n2 sha1 two\n", "sha1", "two", 2),
    ("auth 0\n0 sha1 zero\n", "sha1", "zero", 0),
    ("auth 15\n15 sha1 last\n", "sha1", "last", 15),
    ("  auth 1\n  1   sha1   spaced\n", "sha1", "spaced", 1),
])
def test_keys(tmp_path, text, method, key, index):
    a = load(make_ha_dir(tmp_path, authkeys=text)).config.cluster.auth
    assert (a.method, a.key, a.index) == (method, key, index)


@pytest.mark.parametrize("mode,who", [(0o644, "group and others"), (0o640, "group"), (0o604, "others")])
def test_readable_by_others_is_refused(tmp_path, mode, who):
    d = make_ha_dir(tmp_path, mode=mode)
    err = one_error(d)
    assert err.startswith(f"{d}/authkeys: readable by {who} (mode {mode:04o}): heartbeat refuses")
    assert f"chmod 600 {d}/authkeys" in err


def test_mode_600_and_400_are_fine(tmp_path):
    load(make_ha_dir(tmp_path, mode=0o600))
    load(make_ha_dir(tmp_path, mode=0o400, name="b"))


def test_auth_must_name_a_defined_key(tmp_path):
    d = make_ha_dir(tmp_path, authkeys="auth 2\n1 sha1 one\n3 md5 three\n")
    assert one_error(d) == f"{d}/authkeys:1: auth 2 names key 2, which is not defined (keys defined: 1, 3)"


def test_missing_auth_line(tmp_path):
    d = make_ha_dir(tmp_path, authkeys="1 sha1 one\n")
    assert one_error(d).startswith(f"{d}/authkeys: no `auth N` line")


def test_crc_is_accepted_with_a_loud_warning(tmp_path):
    loaded = load(make_ha_dir(tmp_path, authkeys="auth 1\n1 crc\n"))
    assert loaded.config.cluster.auth.method == "crc" and loaded.config.cluster.auth.key == ""
    (w,) = [str(x) for x in loaded.warnings if "authkeys" in str(x)]
    assert w.startswith(f"{tmp_path}/ha.d/authkeys:2: warning: CRC AUTHENTICATION AUTHENTICATES NOTHING")


@pytest.mark.parametrize("text,line,msg", [
    ("auth 1\n1 crc abc\n", 2, "crc takes no key"),
    ("auth 1\n1 sha1\n", 2, "sha1 needs a key"),
    ("auth 1\n1 sha256 k\n", 2, "unknown authentication method 'sha256' (did you mean \"sha1\"?)"),
    ("auth 1\n16 sha1 k\n1 sha1 k\n", 2, "key number 16 is out of range: heartbeat takes 0..15"),
    ("auth one\n1 sha1 k\n", 1, "invalid auth line 'auth one'"),
    ("auth 1\n1 sha1 k\nsecret\n", 3, "invalid line 'secret'"),
])
def test_bad_lines(tmp_path, text, line, msg):
    d = make_ha_dir(tmp_path, authkeys=text)
    err = one_error(d)
    assert err.startswith(f"{d}/authkeys:{line}: ") and msg in err, err


def test_key_is_the_first_word(tmp_path):
    loaded = load(make_ha_dir(tmp_path, authkeys="auth 1\n1 sha1 two words\n"))
    assert loaded.config.cluster.auth.key == "two"
    assert any("only the first word after sha1 is the key" in str(w) for w in loaded.warnings)


def test_missing_file(tmp_path):
    d = make_ha_dir(tmp_path)
    (d / "authkeys").unlink()
    assert one_error(d).startswith(f"{d}/authkeys: missing")


def test_a_key_that_is_not_utf8_is_refused_without_echoing_it(tmp_path):
    d = make_ha_dir(tmp_path)
    (d / "authkeys").write_bytes(b"auth 1\n1 sha1 H\xe9llo\n")
    err = one_error(d)
    assert err == (f"{d}/authkeys:2: the value of cluster.auth.key is not UTF-8 text; hadirector keeps "
                   "names, paths and keys as UTF-8 (plain ASCII is safest)")
    assert "llo" not in err


def test_non_utf8_comments_are_fine(tmp_path):
    # Chinese deployments often carry GBK comments
    d = make_ha_dir(tmp_path)
    (d / "ha.cf").write_bytes("# 心跳配置\n".encode("gbk") + (d / "ha.cf").read_bytes())
    (d / "authkeys").write_bytes("# 密钥\n".encode("gbk") + b"auth 1\n1 sha1 s3cret\n")
    assert load(d).config.cluster.auth.key == "s3cret"


# ---------------------------------------------------------------- heartbeat reads the file top down


def test_auth_must_come_before_its_key(tmp_path):
    # parse_authfile: a key becomes the signing key when its number is the one the last `auth`
    # line read named ("Auth Key [1] not found" otherwise)
    d = make_ha_dir(tmp_path, authkeys="1 sha1 s3cret\nauth 1\n")
    assert one_error(d) == (f"{d}/authkeys:2: auth 1 comes after key 1 ({d}/authkeys:1): heartbeat only signs "
                            "with a key defined below the auth line that names it (\"Auth Key [1] not found\"); "
                            "put the auth line first")


def test_a_later_auth_line_with_its_key_wins(tmp_path):
    loaded = load(make_ha_dir(tmp_path, authkeys="auth 2\n1 sha1 a\nauth 1\n1 sha1 b\n"))
    a = loaded.config.cluster.auth
    assert (a.index, a.key) == (1, "b")
    assert any("authkeys:1: warning: auth 2 is replaced by the auth line at" in str(w) for w in loaded.warnings)


def test_a_later_auth_line_without_a_key_keeps_the_earlier_key(tmp_path):
    loaded = load(make_ha_dir(tmp_path, authkeys="auth 1\n1 sha1 a\nauth 2\n"))
    a = loaded.config.cluster.auth
    assert (a.index, a.key) == (1, "a")
    assert any("authkeys:3: warning: auth 2 has no key 2 below it, so heartbeat keeps signing with key 1" in str(w)
               for w in loaded.warnings)


def test_auth_without_space_and_key_without_space(tmp_path):
    # sscanf("auth %d") and sscanf("%d%s%s") need no space before the number or after it
    a = load(make_ha_dir(tmp_path, authkeys="auth1\n1sha1 x\n")).config.cluster.auth
    assert (a.index, a.method, a.key) == (1, "sha1", "x")
