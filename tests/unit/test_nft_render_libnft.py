"""libnft's pure parts: output of several listings, error text; and the no-root fallback choice."""

from __future__ import annotations

from hadirector.dataplane.libnft import _first_error, _objects


def test_objects_of_several_json_documents_without_metainfo():
    out = ('{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "a"}}]}\n'
           '{"nftables": [{"metainfo": {}}, {"counter": {"name": "c", "packets": 3}}]}\n')
    assert _objects(out) == [{"table": {"family": "ip", "name": "a"}}, {"counter": {"name": "c", "packets": 3}}]
    assert _objects("") == [] and _objects("  \n") == []


def test_first_error_keeps_libnftables_messages_once():
    err = ("internal:0:0-0: Error: No such file or directory; did you mean table 'x' in family ip?\n\n"
           "internal:0:0-0: Error: Parsing command array at index 3 failed.\n"
           "internal:0:0-0: Error: Parsing command array at index 3 failed.\n")
    assert _first_error(err) == ("No such file or directory; did you mean table 'x' in family ip?; "
                                 "Parsing command array at index 3 failed.")
    assert _first_error("something odd\n") == "something odd"
