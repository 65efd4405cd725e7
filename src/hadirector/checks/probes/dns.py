"""dns: ask the real (as a name server) for `request`; an answer matching `receive` means up.

ldirectord `check_dns` (Net::DNS): `request` is an A record name, or an address whose PTR is
looked up; the real is up when an A address (or PTR name) in the answer matches `receive` as a
regex; UDP, or TCP when the virtual service is TCP; bounded by negotiatetimeout.
Difference: with an empty `receive`, ldirectord always failed ("Response mismatch"); here any
A/PTR answer record counts. The query uses dnspython (RFC 1035).
"""

from __future__ import annotations

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename

from ..base import CheckTarget, ProbeContext, ProbeResult, is_ip, register
from ._wire import regex


@register("dns", services=("dns",))
async def check_dns(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    name = target.request_text
    if not name:
        return ProbeResult(False, "dns check needs a name (or an address for PTR) as request")
    try:
        pattern = regex(target.receive) if target.receive else None
    except ValueError as e:
        return ProbeResult(False, str(e))
    if is_ip(name):
        qname, qtype = dns.reversename.from_address(name), dns.rdatatype.PTR
    else:
        qname, qtype = name, dns.rdatatype.A
    query = dns.message.make_query(qname, qtype)
    try:
        if target.protocol == "tcp":
            resp = await dns.asyncquery.tcp(query, target.address, timeout=target.negotiatetimeout, port=target.port)
        else:
            resp = await dns.asyncquery.udp(query, target.address, timeout=target.negotiatetimeout, port=target.port)
    except dns.exception.Timeout:
        return ProbeResult(False, "DNS: no answer (timeout)")
    except (OSError, dns.exception.DNSException) as e:
        return ProbeResult(False, f"DNS: {e}")
    if resp.rcode() != dns.rcode.NOERROR:
        return ProbeResult(False, f"DNS {name}: {dns.rcode.to_text(resp.rcode())}")
    values = []
    for rrset in resp.answer:
        if rrset.rdtype != qtype:
            continue
        for rd in rrset:
            values.append(rd.address if qtype == dns.rdatatype.A else rd.target.to_text(omit_final_dot=True))
    if not values:
        return ProbeResult(False, f"DNS {name}: no {dns.rdatatype.to_text(qtype)} answer")
    for v in values:
        if pattern is None or pattern.search(v):
            return ProbeResult(True, f"DNS {name} -> {v}")
    return ProbeResult(False, f"DNS {name} -> {', '.join(values)}: none matches {target.receive!r}")
