"""The tables bench/peers prints, with hadirector's ratio to the best peer of each table."""

from __future__ import annotations

import math


def _f(x, fmt="{:8.1f}") -> str:
    return "       -" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _best_peer(rows: list[dict], key: str = "median") -> dict | None:
    peers = [r for r in rows if r.get("system") != "hadirector" and r.get(key) is not None
             and not (isinstance(r.get(key), float) and math.isnan(r[key]))]
    return min(peers, key=lambda r: r[key], default=None)


def _ratio_line(rows: list[dict], key: str = "median", what: str = "median outage") -> str:
    ours = next((r for r in rows if r.get("system") == "hadirector" and r.get(key) is not None), None)
    best = _best_peer(rows, key)
    if not ours or not best or not best[key]:
        return ""
    others = ", ".join(f"{r['system']} {ours[key] / r[key]:.2f}" for r in rows
                       if r.get("system") != "hadirector" and r.get(key))
    return f"  hadirector / best peer ({best['system']}) {what}: {ours[key] / best[key]:.2f}   (each: {others})"


def crash_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"  {'system':11s} {'setting':30s} {'n':>3s} {'median ms':>10s} {'p95 ms':>9s} {'max ms':>9s}")
    for r in rows:
        if r.get("setting") is None:
            print(f"  {r['system']:11s} " + (f"failed: {r['error'][:200]}" if r.get("error") else
                                             "no safe setting on its ladder"))
            continue
        print(f"  {r['system']:11s} {r['setting']:30s} {r['n']:3d} {_f(r['median'], '{:10.1f}')} "
              f"{_f(r['p95'], '{:9.1f}')} {_f(r['max'], '{:9.1f}')}")
        if r.get("error"):
            print(f"  {'':11s} stopped at {r['error'].splitlines()[0][:160]}")
    line = _ratio_line([r for r in rows if r.get("setting") is not None])
    if line:
        print(line)


def print_tables(res: dict) -> None:
    print(f"\n==== bench/peers, started {res['started']}, {res['machine']['cpus']} CPUs, kernel "
          f"{res['machine']['kernel']}, {res.get('seconds', 0)} s")
    if "crash_defaults" in res:
        crash_table("Crash failover, each system at its defaults (kill -9 + links down; outage from "
                    "the kill to the first answer from the other director)", res["crash_defaults"])
    if "crash_fast" in res:
        crash_table("Crash failover at fast settings", res["crash_fast"])
    if "switchover" in res:
        print("\nPlanned switchover (client: one request every 5 ms, new connection each, 3 s timeout)")
        print(f"  {'system':11s} {'n':>3s} {'gap median ms':>14s} {'gap max ms':>11s} {'lost':>10s} "
              f"{'delayed>200ms':>14s}")
        for r in res["switchover"]:
            print(f"  {r['system']:11s} {r['n']:3d} {r['median']:14.1f} {r['max']:11.1f} "
                  f"{r['lost']:>4d}/{r['sent']:<5d} {r['delayed']:14d}")
        line = _ratio_line(res["switchover"], what="median gap")
        if line:
            print(line)
    if "frontier_soak" in res:
        print("\nSafety frontier soak: every candidate at once, both CPUs busy, heartbeat link loss")
        print(f"  {'system':11s} {'setting':30s} {'moves':>5s} {'two':>5s} {'silent':>6s} {'dead decl':>9s}  safe")
        for s, rows in res["frontier_soak"].items():
            for r in rows:
                print(f"  {s:11s} {r['setting']:30s} {r['moves']:5d} {r['two']:5d} {r['silences']:6d} "
                      f"{r['detections']:9d}  {'yes' if r['safe'] else 'NO'}")
    if "frontier" in res:
        crash_table("Crash failover at each system's tightest safe setting (same load and loss)", res["frontier"])
        ours = next((r for r in res["frontier"] if r["system"] == "hadirector" and r.get("n")), None)
        if ours:
            for r in res["frontier"]:
                if r["system"] != "hadirector" and r.get("n"):
                    ok = ours["median"] <= r["median"] / 2
                    print(f"  target: hadirector median <= half of {r['system']}'s: "
                          f"{ours['median']:.0f} vs {r['median']:.0f} ms: {'met' if ok else 'NOT met'}")
    if "checks" in res:
        print("\nCheck detection: a real's server stops -> the real is removed (expected = period / 2 + "
              "mean reaction: free of where the stops fell in each schedule)")
        print(f"  {'system':24s} {'kind':5s} {'n':>3s} {'median ms':>10s} {'p95 ms':>9s} {'period':>8s} "
              f"{'reaction':>9s} {'expected':>9s}")
        for r in res["checks"]:
            print(f"  {r['system']:24s} {r['kind']:5s} {r['n']:3d} {r['median_ms']:10.1f} {r['p95_ms']:9.1f} "
                  f"{_f1(r.get('period_ms')):>8s} {_f1(r.get('reaction_median_ms')):>9s} {_f1(r.get('expected_ms')):>9s}")
        for kind in ("tcp", "http"):
            ha = next((r for r in res["checks"] if r["system"] == "haproxy" and r["kind"] == kind), None)
            for ours in (r for r in res["checks"] if r["system"].startswith("hadirector") and r["kind"] == kind):
                if ha and ha.get("expected_ms") and ours.get("expected_ms"):
                    ok = ours["expected_ms"] <= ha["expected_ms"]
                    print(f"  {kind}: {ours['system']} / haproxy expected {ours['expected_ms'] / ha['expected_ms']:.3f}, "
                          f"reaction {ours['reaction_median_ms']:.1f} vs {ha['reaction_median_ms']:.1f} ms "
                          f"(target <= 1: {'met' if ok else 'NOT met'})")
    if "dataplane" in res:
        print("\nData plane: see the bench/dataplane.py output above")


def _f1(x) -> str:
    """A figure in ms with one decimal ("-" when missing)."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _ms(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x / 1000:.2f} s" if x >= 10_000 else f"{x:.0f} ms"


def _md_crash(rows: list[dict]) -> list[str]:
    ok = [r for r in rows if r.get("setting") is not None and r.get("n")]
    ours = next((r for r in ok if r["system"] == "hadirector"), None)
    best = _best_peer(ok)
    out = ["| system | setting | n | median | p95 | max | hadirector / this |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("setting") is None:
            out.append(f"| {r['system']} | {'run failed' if r.get('error') else 'no safe setting on its ladder'} "
                       "| | | | | |")
            continue
        ratio = (f"{ours['median'] / r['median']:.2f}" if ours and r is not ours and r.get("n") and ours.get("n")
                 else "")
        if best is r and ratio:
            ratio = f"**{ratio}** (best peer)"
        stopped = f" (stopped at {r['error'].splitlines()[0][:120]})" if r.get("error") else ""
        out.append(f"| {r['system']} | {r['setting']} | {r['n']}{stopped} | {_ms(r['median'])} | {_ms(r['p95'])} | "
                   f"{_ms(r['max'])} | {ratio} |")
    return out


def markdown(res: dict) -> str:
    """The tables of docs/benchmarks.md "Peers", from one result file."""
    md: list[str] = [f"Run of {res['started']} (`bench/peers {' '.join(res['argv'])}`, {res.get('seconds', 0)} s, "
                     f"{res['machine']['cpus']} CPUs, kernel {res['machine']['kernel']})."]
    for key, title in (("crash_defaults", "Crash failover, each at its defaults"),
                       ("crash_fast", "Crash failover at fast settings"),
                       ("frontier", "Crash failover at each system's tightest safe setting, under the soak's load and loss")):
        if key in res:
            md += ["", f"**{title}**", ""] + _md_crash(res[key])
    if "switchover" in res:
        md += ["", "**Planned switchover**", "",
               "| system | how | n | gap median | gap max | requests lost | delayed > 200 ms |",
               "|---|---|---|---|---|---|---|"]
        how = {"hadirector": "`hadirector standby`", "heartbeat3": "`hb_standby`",
               "keepalived": "SIGTERM to the master (priority-0 advert)"}
        for r in res["switchover"]:
            md.append(f"| {r['system']} | {how.get(r['system'], '')} | {r['n']} | {_ms(r['median'])} | "
                      f"{_ms(r['max'])} | {r['lost']} of {r['sent']} | {r['delayed']} |")
    if "frontier_soak" in res:
        md += ["", "**Safety frontier soak**", "",
               "| system | setting | VIP moves | samples with two answering | silences >= 100 ms | "
               "peer declared dead | heartbeats dropped | safe |", "|---|---|---|---|---|---|---|---|"]
        for s, rows in res["frontier_soak"].items():
            for r in rows:
                md.append(f"| {s} | {r['setting']} | {r['moves']} | {r['two']} | {r['silences']} | "
                          f"{r['detections']} | {r['hb_dropped']} | {'yes' if r['safe'] else '**no**'} |")
    if "checks" in res:
        md += ["", "**Check detection** (a real's server stops; time until the real is removed. period: the "
               "checker's measured time between checks; reaction: from the failing check's SYN at the real to "
               "the removal; expected = period / 2 + mean reaction)", "",
               "| system | check | n | median | p95 | max | period | reaction | expected | expected / haproxy |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["checks"]:
            ha = next((x for x in res["checks"] if x["system"] == "haproxy" and x["kind"] == r["kind"]), None)
            ratio = (f"{r['expected_ms'] / ha['expected_ms']:.3f}"
                     if ha and ha is not r and ha.get("expected_ms") and r.get("expected_ms") else "")
            md.append(f"| {r['system']} | {r['kind']} | {r['n']} | {r['median_ms']:.0f} ms | {r['p95_ms']:.0f} ms | "
                      f"{r['max_ms']:.0f} ms | {_f1(r.get('period_ms'))} ms | {_f1(r.get('reaction_median_ms'))} ms | "
                      f"{_f1(r.get('expected_ms'))} ms | {ratio} |")
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    import json
    import sys
    with open(sys.argv[1]) as f:
        print(markdown(json.load(f)))
