#!/usr/bin/env python3
"""bench/compare.py on two made-up result folders: every verdict it can give, checked."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD = [
    '{"bench":"spawn","metric":"join","unit":"ns/op","value":100,"min":95,"max":110,"reps":5,'
    '"baseline":"go","baseline_value":200,"baseline_min":190,"baseline_max":210,"baseline_reps":5}',
    '{"bench":"spawn","metric":"join","unit":"ns/op","value":100,"min":95,"max":110,"reps":5,'
    '"baseline":"pthread","baseline_value":9000,"baseline_min":8000,"baseline_max":9500,"baseline_reps":5}',
    '{"bench":"post","metric":"k64","unit":"tasks/s","value":2.3e7,"min":2.2e7,"max":2.4e7,"reps":5,'
    '"baseline":"mq","baseline_value":5.5e7,"baseline_min":5.4e7,"baseline_max":5.6e7,"baseline_reps":5}',
    '{"bench":"http","metric":"rps","unit":"req/s","value":1000,"min":990,"max":1010,"reps":3}',
    '{"bench":"old","metric":"x","unit":"ms","value":1,"min":1,"max":1,"reps":1}',
]
NEW = [
    '{"bench":"spawn","metric":"join","unit":"ns/op","value":80,"min":78,"max":85,"reps":5,'
    '"baseline":"go","baseline_value":205,"baseline_min":195,"baseline_max":215,"baseline_reps":5}',
    '{"bench":"post","metric":"k64","unit":"tasks/s","value":2.35e7,"min":2.3e7,"max":2.5e7,"reps":5,'
    '"baseline":"mq","baseline_value":4e7,"baseline_min":3.9e7,"baseline_max":4.1e7,"baseline_reps":5}',
    '{"bench":"http","metric":"rps","unit":"req/s","value":800,"min":790,"max":810,"reps":3}',
    'not json, ignored',
    '{"bench":"new","metric":"y","unit":"ms","value":1,"min":1,"max":1,"reps":1}',
]


def row(out, bench, side):
    for line in out.splitlines():
        f = line.split()
        if len(f) > 3 and f[0] == bench and f[2] == side:
            return line
    raise AssertionError("no row %s/%s in:\n%s" % (bench, side, out))


def main():
    with tempfile.TemporaryDirectory() as d:
        for name, lines in (("old", OLD), ("new", NEW)):
            os.mkdir(os.path.join(d, name))
            with open(os.path.join(d, name, "results.jsonl"), "w") as f:
                f.write("\n".join(lines) + "\n")
        out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare.py"),
                              os.path.join(d, "old"), os.path.join(d, "new")],
                             check=True, capture_output=True, text=True).stdout
        checks = [
            (row(out, "spawn", "rotor"), ("-20.0%", "better")),  # lower ns/op, apart
            (row(out, "spawn", "go"), ("+2.5%", "~")),           # ranges overlap
            (row(out, "post", "rotor"), ("+2.2%", "~")),
            (row(out, "post", "mq"), ("-27.3%", "worse")),       # a rate fell
            (row(out, "http", "rotor"), ("-20.0%", "worse")),
            (row(out, "new", "rotor"), ("new row",)),
            (row(out, "spawn", "pthread"), ("gone",)),
            (row(out, "old", "rotor"), ("gone",)),
        ]
        for line, words in checks:
            for w in words:
                assert w in line, "%r not in %r" % (w, line)
        assert "1 better, 1 worse" in out, out
        bad = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare.py"),
                              os.path.join(d, "none"), os.path.join(d, "new")],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and "compare:" in bad.stderr, bad
    print("bench/compare.py: every verdict as expected")


main()
