#!/usr/bin/env python3
"""Table and plot data of perf/bench_cluster.sh from its results file (one line per
measurement: "rtt P50", "fsync1 P50 OPS", "fsync2 P50 OPS", "single - N TPUT P50 P99 ERR -",
"cluster BATCH N TPUT P50 P99 ERR CMDS_PER_BATCH"). Usage: bench_cluster_report.py RES DAT"""
import sys


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2] if s else 0.0


def span(xs):
    return ", ".join(f"{x:.0f}" for x in xs) + " us" if xs else "none"


def main():
    res, dat = sys.argv[1:3]
    rtt = None
    fs1, fs2 = [], []
    single, cluster, order = {}, {}, []
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
        elif f[0] == 'single':
            single[int(f[2])] = (float(f[3]), float(f[4]), float(f[5]), int(f[6]))
        elif f[0] == 'cluster':
            if f[1] not in cluster:
                cluster[f[1]] = {}
                order.append(f[1])
            cluster[f[1]][int(f[2])] = (float(f[3]), float(f[4]), float(f[5]), int(f[6]), f[7])
    floor = median(fs2) + (rtt or 0)
    print(f"floor: 2 concurrent 4 KiB write+fdatasync p50 {median(fs2):.0f} us (median of "
          f"{len(fs2)} runs: {span(fs2)}) + veth UDP round trip p50 {rtt or 0:.0f} us = "
          f"{floor:.0f} us; one fdatasync stream p50 {median(fs1):.0f} us ({span(fs1)})")
    hdr = ("| setup | outstanding | ops/s | p50 us | p99 us | errors | cmds/batch "
           "| p50 / floor | ops/s / single |")
    print(hdr)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, (t, p50, p99, err) in sorted(single.items()):
        print(f"| 1 replica, no replication | {n} | {t:,.0f} | {p50:,.0f} | {p99:,.0f} | {err} "
              f"| - | - | 1.00 |")
    for b in order:
        for n, (t, p50, p99, err, per) in sorted(cluster[b].items()):
            ratio_p = f"{p50 / floor:.2f}" if n == 1 and floor > 0 else "-"
            ratio_t = f"{t / single[n][0]:.2f}" if n in single and single[n][0] > 0 else "-"
            print(f"| 3 replicas, batch {b} | {n} | {t:,.0f} | {p50:,.0f} | {p99:,.0f} | {err} "
                  f"| {per} | {ratio_p} | {ratio_t} |")
    with open(dat, 'w') as out:
        series = [("1 replica, no replication", single)]
        series += [(f"3 replicas, batch {b}", cluster[b]) for b in order]
        for name, rows in series:
            out.write(f'"{name}"\n')
            for n, r in sorted(rows.items()):
                out.write(f"{n} {r[0]} {r[1]} {r[2]} {floor}\n")
            out.write("\n\n")


if __name__ == '__main__':
    main()
