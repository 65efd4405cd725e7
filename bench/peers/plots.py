"""PNG plots of a bench/peers result (matplotlib, no display)."""

from __future__ import annotations

import os


def plot_all(res: dict, outdir: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(outdir, exist_ok=True)
    made = []
    for key, title in (("crash_fast", "Crash failover at fast settings"),
                       ("crash_defaults", "Crash failover at defaults"),
                       ("frontier", "Crash failover at the tightest safe setting")):
        rows = [r for r in res.get(key, []) if r.get("samples")]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.boxplot([r["samples"] for r in rows], vert=False, showfliers=True)
        ax.set_yticks(range(1, len(rows) + 1), [f"{r['system']} (n={r['n']})\n{r['setting']}" for r in rows], fontsize=8)
        for i, r in enumerate(rows, 1):
            ax.plot(r["samples"], [i] * len(r["samples"]), "o", ms=3, alpha=0.5)
        ax.set_xlabel("client outage, ms (kill -9 + links down -> first answer from the peer)", fontsize=9)
        if key == "crash_defaults":
            ax.set_xscale("log")
        ax.set_title(f"{title} ({res['started'][:16]})", fontsize=9)
        fig.tight_layout()
        path = os.path.join(outdir, f"peers-{key.replace('_', '-')}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    soak = res.get("frontier_soak")
    if soak:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for i, (system, rows) in enumerate(soak.items()):
            xs = [r["detection_ms"] for r in rows]
            ax.plot(xs, [i] * len(xs), "-", color="0.8")
            for r in rows:
                ax.plot(r["detection_ms"], i, "o" if r["safe"] else "x", ms=8,
                        color="tab:green" if r["safe"] else "tab:red")
        fr = {r["system"]: r for r in res.get("frontier", []) if r.get("median")}
        ax.set_yticks(range(len(soak)), [f"{s}\n(outage at frontier {fr[s]['median']:.0f} ms)" if s in fr else s
                                          for s in soak], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("detection setting, ms (deadtime; keepalived: 3 x advert_int + skew)", fontsize=9)
        ax.set_title("Safety frontier: 10 min soak, both CPUs busy, 10 % heartbeat loss (o safe, x not)", fontsize=8)
        fig.tight_layout()
        path = os.path.join(outdir, "peers-frontier-soak.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made
