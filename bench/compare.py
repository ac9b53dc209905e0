#!/usr/bin/env python3
"""Compare two bench results the way Go's benchstat does: every row before and after, the
change in percent, and whether the change is beyond the repetitions' spread.

    bench/compare.py OLD NEW        (result folders of bench/run.sh, or their results.jsonl)

A row is one figure of one side: rotor's series of a (bench, metric) once, and each
baseline's series of that (bench, metric). Its cell reads "median [min..max]". The change
is (new - old) / old. "~" means the old and new [min..max] ranges overlap, so the
repetitions do not show a change; otherwise the change is marked "better" or "worse" by the
figure's unit (rates, IOPS and counts are better higher, times and sizes lower). A
baseline's own change says how much the machine moved between the runs (this VM's two
modes): judge rotor's change against it. Rows present in only one run are listed as such.
Exit status 0, or 2 on bad usage or unreadable input.
"""
import json
import os
import sys


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "results.jsonl")
    rows = {}
    order = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            b, m, u = r.get("bench"), r.get("metric"), r.get("unit", "")
            sides = [("rotor", r.get("value"), r.get("min"), r.get("max"), r.get("reps"))]
            bl = r.get("baseline")
            if bl:
                sides.append((bl, r.get("baseline_value"), r.get("baseline_min"),
                              r.get("baseline_max"), r.get("baseline_reps")))
            for who, v, lo, hi, n in sides:
                if v is None:
                    continue
                key = (b, m, who)
                if key not in rows:
                    order.append(key)
                rows[key] = {"unit": u, "v": float(v),
                             "lo": float(lo) if lo is not None else float(v),
                             "hi": float(hi) if hi is not None else float(v),
                             "n": n}
    return rows, order


def num(v):
    if abs(v) >= 1e6:
        return "%.2fM" % (v / 1e6)
    if abs(v) >= 1e4:
        return "%.0f" % v
    return "%.4g" % v


def cell(s):
    if s["lo"] == s["hi"]:
        return num(s["v"])
    return "%s [%s..%s]" % (num(s["v"]), num(s["lo"]), num(s["hi"]))


def higher_is_better(unit):
    return unit.endswith("/s") or unit in ("IOPS", "tasks", "x")


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    try:
        old, old_order = load(argv[1])
        new, new_order = load(argv[2])
    except OSError as e:
        sys.stderr.write("compare: %s\n" % e)
        return 2
    fmt = "%-10s %-30s %-22s %-12s %-28s %-28s %8s  %s"
    print(fmt % ("bench", "metric", "side", "unit", "old", "new", "change", ""))
    worse = better = 0
    for key in new_order:
        b, m, who = key
        n = new[key]
        if key not in old:
            print(fmt % (b, m, who, n["unit"], "-", cell(n), "", "new row"))
            continue
        o = old[key]
        change = (n["v"] - o["v"]) / o["v"] * 100 if o["v"] else 0.0
        overlap = n["lo"] <= o["hi"] and o["lo"] <= n["hi"]
        if overlap:
            verdict = "~"
        elif (change > 0) == higher_is_better(n["unit"]):
            verdict = "better"
            better += who == "rotor"
        else:
            verdict = "worse"
            worse += who == "rotor"
        print(fmt % (b, m, who, n["unit"], cell(o), cell(n), "%+.1f%%" % change, verdict))
    for key in old_order:
        if key not in new:
            b, m, who = key
            print(fmt % (b, m, who, old[key]["unit"], cell(old[key]), "-", "", "gone"))
    print("rotor's rows beyond the repetitions' spread: %d better, %d worse "
          "(\"~\": the ranges overlap)" % (better, worse))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
