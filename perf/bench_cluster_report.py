#!/usr/bin/env python3
"""Table and plot data of perf/bench_cluster.sh from its results file (one line per
measurement: "rtt P50", "fsync1 P50 OPS", "fsync2 P50 OPS", "single LABEL N TPUT P50 P99 ERR -",
"cluster LABEL N TPUT P50 P99 ERR CMDS_PER_BATCH"). LABEL is "-" (single) or the batch spec
(cluster), with "+cK" appended for runs with ordo-load --coalesce K. Repeated runs of one
setup give the median (by ops/s). Usage: bench_cluster_report.py RES DAT"""
import sys


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2] if s else 0.0


def span(xs):
    return ", ".join(f"{x:.0f}" for x in xs) + " us" if xs else "none"


def pick(runs):
    """The run with the median throughput, and every throughput seen."""
    s = sorted(runs, key=lambda r: r[0])
    return s[len(s) // 2], [r[0] for r in runs]


def split(label):
    """("1024:8704+c16") -> ("1024:8704", "+c16")"""
    i = label.find('+c')
    return (label, '') if i < 0 else (label[:i], label[i:])


def read(res):
    rtt, fs1, fs2 = None, [], []
    rows, order = {}, []
    for line in open(res):
        f = line.split()
        if not f:
            continue
        if f[0] == 'rtt':
            rtt = float(f[1])
        elif f[0] == 'fsync1':
            fs1.append(float(f[1]))
        elif f[0] == 'fsync2':
            fs2.append(float(f[1]))
        elif f[0] in ('single', 'cluster'):
            key = (f[0], f[1])
            if key not in rows:
                rows[key] = {}
                order.append(key)
            r = (float(f[3]), float(f[4]), float(f[5]), int(f[6]), f[7])
            rows[key].setdefault(int(f[2]), []).append(r)
    return rtt, fs1, fs2, rows, order


def name(key):
    base, co = split(key[1])
    co = f", coalesce {co[2:]}" if co else ""
    if key[0] == 'single':
        return f"1 replica, no replication{co}"
    return f"3 replicas, batch {base}{co}"


def main():
    res, dat = sys.argv[1:3]
    rtt, fs1, fs2, rows, order = read(res)
    floor = median(fs2) + (rtt or 0)
    print(f"floor: 2 concurrent 4 KiB write+fdatasync p50 {median(fs2):.0f} us (median of "
          f"{len(fs2)} runs: {span(fs2)}) + veth UDP round trip p50 {rtt or 0:.0f} us = "
          f"{floor:.0f} us; one fdatasync stream p50 {median(fs1):.0f} us ({span(fs1)})")
    print("| setup | outstanding | ops/s (runs) | p50 us | p99 us | errors | cmds/batch "
          "| p50 / floor | ops/s / single | ops/s / uncoalesced |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in order:
        co = split(key[1])[1]
        for n, runs in sorted(rows[key].items()):
            (t, p50, p99, err, per), all_t = pick(runs)
            ref = rows.get(('single', '-' + co if co else '-'), {}).get(n)
            ratio_s = f"{t / pick(ref)[0][0]:.2f}" if ref and pick(ref)[0][0] > 0 else "-"
            base = rows.get((key[0], split(key[1])[0]), {}).get(n)
            ratio_c = f"{t / pick(base)[0][0]:.2f}" if co and base and pick(base)[0][0] > 0 else "-"
            ratio_p = f"{p50 / floor:.2f}" if n == 1 and key[0] == 'cluster' and floor > 0 else "-"
            seen = ", ".join(f"{x:,.0f}" for x in all_t) if len(all_t) > 1 else f"{t:,.0f}"
            errs = sum(r[3] for r in runs)
            print(f"| {name(key)} | {n} | {seen} | {p50:,.0f} | {p99:,.0f} | {errs} | {per} "
                  f"| {ratio_p} | {ratio_s} | {ratio_c} |")
    with open(dat, 'w') as out:
        for key in order:
            out.write(f'"{name(key)}"\n')
            for n, runs in sorted(rows[key].items()):
                r = pick(runs)[0]
                out.write(f"{n} {r[0]} {r[1]} {r[2]} {floor}\n")
            out.write("\n\n")


if __name__ == '__main__':
    main()
