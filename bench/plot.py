#!/usr/bin/env python3
"""Plot how the node's costs grow with size, from bench/run's results.json.

Writes one SVG (standard library only) with four panels: inbox throughput
and its limit by concurrent senders, fan-out time by recipients, big-case
apply/verify time by ledger entries, and the case view (API and dashboard
page) p50/p95 by ledger entries.

Usage: python3 bench/plot.py bench/results/results.json bench/results/growth.svg
"""
import json
import sys
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def series(figs, prefix, suffix="", contains="", empty=False):
    """The (size, median) points of the figures so named; with empty, a
    figure without a size (a store of no cases) counts at size 0."""
    pts = [(f.get("size") or 0, f["median"]) for f in figs
           if f["name"].startswith(prefix) and f["name"].endswith(suffix) and contains in f["name"]
           and (f.get("size") or empty)]
    return sorted(pts)


def panel(x0, y0, w, h, title, xlabel, ylabel, lines):
    out = [f'<g transform="translate({x0},{y0})">',
           f'<text x="{w/2}" y="-8" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
           f'<rect x="0" y="0" width="{w}" height="{h}" fill="none" stroke="#888"/>']
    pts = [p for _, l in lines for p in l]
    if not pts:
        out.append(f'<text x="{w/2}" y="{h/2}" text-anchor="middle" font-size="12">no data</text></g>')
        return out
    xmax = max(p[0] for p in pts) * 1.05
    ymax = max(p[1] for p in pts) * 1.15 or 1
    sx = lambda x: x / xmax * w
    sy = lambda y: h - y / ymax * h
    for i in range(5):
        yv = ymax * i / 4
        out.append(f'<line x1="0" x2="{w}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#eee"/>')
        out.append(f'<text x="-4" y="{sy(yv)+4:.1f}" text-anchor="end" font-size="10">{yv:.3g}</text>')
    xs = sorted({p[0] for p in pts})
    for xv in xs:
        out.append(f'<text x="{sx(xv):.1f}" y="{h+14}" text-anchor="middle" font-size="10">{xv:g}</text>')
    out.append(f'<text x="{w/2}" y="{h+30}" text-anchor="middle" font-size="11">{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(-42,{h/2}) rotate(-90)" text-anchor="middle" font-size="11">{escape(ylabel)}</text>')
    for i, (label, l) in enumerate(lines):
        c = COLORS[i % len(COLORS)]
        if not l:
            continue
        d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(l))
        out.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in l:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"/>')
        out.append(f'<text x="8" y="{16 + 14*i}" font-size="11" fill="{c}">{escape(label)}</text>')
    out.append('</g>')
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        res = json.load(f)
    figs = res["figures"]
    w, h = 360, 220
    parts = []
    parts += panel(70, 40, w, h, "Inbox: accepted activities/s", "concurrent senders", "activities/s", [
        ("node (vultron serve)", series(figs, "inbox accepted/s")),
        ("limit (verify+digest+parse+commit)", series(figs, "limit activities/s")),
        ("interop peer (3 verifiers, no key cache)", series(figs, "interop peer accepted/s")),
        ("plain Fedify inbox", series(figs, "Fedify inbox accepted/s")),
    ])
    parts += panel(540, 40, w, h, "Fan-out: time until all delivered", "participant inboxes", "seconds", [
        ("all delivered, Ed25519", series(figs, "fan-out (ed25519) N=", "s-all-delivered")),
        ("all delivered, RSA-2048", series(figs, "fan-out (rsa) N=", "s-all-delivered")),
    ])
    parts += panel(70, 330, w, h, "Big case (2,000 participants)", "ledger entries", "seconds", [
        ("apply to empty replica", series(figs, "big case", "s-apply")),
        ("verify hash chain", series(figs, "big case", "s-verify")),
    ])
    parts += panel(540, 330, w, h, "Case view: API and dashboard page", "ledger entries", "ms", [
        ("GET /api/cases/{id} p95", series(figs, "big case", "p95 ms", "GET /api")),
        ("GET /api/cases/{id} p50", series(figs, "big case", "p50 ms", "GET /api")),
        ("dashboard case page p95", series(figs, "big case", "p95 ms", "dashboard")),
        ("dashboard case page p50", series(figs, "big case", "p50 ms", "dashboard")),
    ])
    parts += panel(70, 620, w, h, "Growth: inbox accepted/s", "cases in the store", "activities/s", [
        ("bbolt, 64 senders", series(figs, "growth bbolt inbox accepted/s, 64 senders", empty=True)),
        ("bbolt, 16 senders", series(figs, "growth bbolt inbox accepted/s, 16 senders", empty=True)),
        ("PostgreSQL, 64 senders", series(figs, "growth pg inbox accepted/s, 64 senders", empty=True)),
        ("PostgreSQL, 16 senders", series(figs, "growth pg inbox accepted/s, 16 senders", empty=True)),
    ])
    parts += panel(540, 620, w, h, "Growth: fan-out to 2,000", "cases in the store", "deliveries/s", [
        ("bbolt", series(figs, "growth bbolt fan-out N=2000 deliveries/s", empty=True)),
        ("PostgreSQL", series(figs, "growth pg fan-out N=2000 deliveries/s", empty=True)),
    ])
    # A run of some parts merged into earlier results says when each part
    # was measured.
    dates = res.get("date", "")
    if res.get("parts"):
        by_date = {}
        for part, date in sorted(res["parts"].items()):
            by_date.setdefault(date, []).append(part)
        dates = "; ".join(f"{'/'.join(parts)} {date}" for date, parts in sorted(by_date.items()))
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="960" height="900" font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="480" y="893" text-anchor="middle" font-size="10">{escape(res.get("machine", ""))}, {escape(dates)}, medians of {res.get("runs")} runs</text>']
    svg += parts + ["</svg>"]
    with open(dst, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
