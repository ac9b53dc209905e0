#!/usr/bin/env bash
# Profile a rotor program with perf and report where the CPU went, task by task.
#
#   tools/rotor-perf.sh BUILD_DIR [options] -- COMMAND [ARGS...]     (tools/rotor perf -- ...)
#
#   -F HZ        samples per second and CPU (default 999)
#   -o DIR       where perf.data, the script output and report.txt go
#                (default: bench-results/perf-<date>-<host>, git-ignored)
#   --switches   also record every task switch (the switch_in/switch_out probes): each sample
#                is then charged to the task that was running, by name, even where the
#                frame chain is broken; costs a few microseconds per switch while recording
#   --no-usdt    use no probe (no root needed): tasks are known by their body function only
#   --top N      hottest functions listed per task (default 6)
#
# How samples become tasks: rotor keeps frame pointers, and a coroutine's first frame has a
# zero frame pointer, so `perf record --call-graph fp` unwinds a task's stack down to
# rotor__task_slot_entry; the frame it called is the task's body function. The task_spawn
# USDT probe (lib/core/probes.h) gives each task's name and body, which turns body functions
# into task names. Probes need perf probe rights (root, or a tracefs the user may write);
# without them the report still groups by body function. COMMAND is looked up in PATH, then
# relative to BUILD_DIR (so `-- bench/prof_demo` works).
set -euo pipefail

usage() {
	sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 1 ] || usage
build=$1
shift
freq=999
outdir=
switches=
usdt=1
top=6
while [ $# -gt 0 ]; do
	case "$1" in
	-F)
		freq=$2
		shift 2
		;;
	-o)
		outdir=$2
		shift 2
		;;
	--switches)
		switches=1
		shift
		;;
	--no-usdt)
		usdt=
		shift
		;;
	--top)
		top=$2
		shift 2
		;;
	--)
		shift
		break
		;;
	*) usage ;;
	esac
done
[ $# -ge 1 ] || usage
command -v perf >/dev/null || {
	echo "rotor-perf: perf is not installed (Debian: linux-perf)" >&2
	exit 1
}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$outdir" ] || outdir=$root/bench-results/perf-$(date +%Y%m%d-%H%M%S)-$(hostname)
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# ---- the program and the file that holds rotor's probes ---------------------------------------
exe=$1
if [[ "$exe" != */* ]] && command -v "$exe" >/dev/null; then
	exe=$(command -v "$exe")
elif [ ! -x "$exe" ] && [ -x "$build/$exe" ]; then
	exe=$build/$exe
fi
[ -x "$exe" ] || {
	echo "rotor-perf: $1: not found (looked in PATH, ., and $build)" >&2
	exit 1
}
exe=$(readlink -f "$exe")
shift
has_probes() { readelf -n "$1" 2>/dev/null | grep -c 'Provider: rotor' >/dev/null; }
probe_file=
if has_probes "$exe"; then
	probe_file=$exe
else
	lib=$(ldd "$exe" 2>/dev/null | awk '/librotor\.so/ { print $3; exit }')
	[ -n "$lib" ] && has_probes "$(readlink -f "$lib")" && probe_file=$(readlink -f "$lib")
fi

# ---- probes ------------------------------------------------------------------------------------
events=()
names_note="task names: not recorded (--no-usdt): tasks are shown by body function"
tracefs=
# Where uprobe events are defined: a mounted tracefs. On a machine where nothing has mounted
# it yet (a fresh boot: perf probe mounts it, but only once it runs), mount it ourselves.
find_tracefs() {
	local d
	for d in /sys/kernel/tracing /sys/kernel/debug/tracing \
		$(awk '$3 == "tracefs" { print $2 }' /proc/mounts 2>/dev/null); do
		[ -e "$d/uprobe_events" ] && echo "$d" && return 0
	done
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null &&
		[ -e /sys/kernel/tracing/uprobe_events ] && echo /sys/kernel/tracing
}
cleanup() {
	[ -n "${added:-}" ] || return 0
	echo '-:rotor/task_spawn' >>"$tracefs/uprobe_events" 2>/dev/null || true
	perf probe -q -d 'sdt_rotor:*' 2>/dev/null || true
}
trap cleanup EXIT
if [ -n "$usdt" ] && [ -z "$probe_file" ]; then
	names_note="task names: no rotor USDT probes in $exe or its librotor (built without sys/sdt.h or ROTOR_USDT=OFF): tasks are shown by body function"
elif [ -n "$usdt" ] && ! tracefs=$(find_tracefs); then
	names_note="task names: no tracefs mounted, and mounting one failed (root is needed): tasks are shown by body function"
elif [ -n "$usdt" ]; then
	# perf reads the SDT note (address, and where each argument lives); the name argument is
	# then re-declared as a string, which perf probe cannot say for an SDT argument.
	added=1
	cleanup # events left by a run that was killed
	if ! perf probe -q -x "$probe_file" -a sdt_rotor:task_spawn 2>"$outdir/probe.log"; then
		names_note="task names: perf probe failed (root or a writable tracefs is needed; see $outdir/probe.log): tasks are shown by body function"
	else
		def=$(grep '^p:sdt_rotor/task_spawn ' "$tracefs/uprobe_events" | head -1)
		perf probe -q -d sdt_rotor:task_spawn
		read -r _ where a1 a2 a3 a4 a5 <<<"$def"
		name_loc=${a5#arg5=}
		name_loc=${name_loc%:*}
		echo "p:rotor/task_spawn $where worker=${a1#arg1=} task=${a2#arg2=} id=${a3#arg3=} fn=${a4#arg4=} name=+0($name_loc):string" \
			>>"$tracefs/uprobe_events"
		events+=(-e 'rotor:task_spawn/call-graph=no/')
		names_note="task names: from the task_spawn probe in $probe_file"
		if [ -n "$switches" ]; then
			perf probe -q -x "$probe_file" -a sdt_rotor:switch_in -a sdt_rotor:switch_out 2>>"$outdir/probe.log"
			events+=(-e 'sdt_rotor:switch_in/call-graph=no/' -e 'sdt_rotor:switch_out/call-graph=no/')
			names_note+=", samples charged by the switch_in/switch_out probes"
		fi
	fi
fi

# ---- record ------------------------------------------------------------------------------------
# cycles where the machine has a PMU; a VM without one samples the cpu-clock timer instead.
sample_event=cycles
case "$(perf stat -x, -e cycles true 2>&1 | grep cycles)" in
"<not supported>"* | "<not counted>"* | "") sample_event=cpu-clock ;;
esac
echo "rotor-perf: recording $exe${*:+ $*} ($sample_event, $freq Hz, frame-pointer call graphs)" >&2
# The frequency is the sampling event's own: a global -F would sample the probes too, and
# keep only some of the spawns (probe events are recorded every one by default).
rm -f "$outdir/perf.data"
set +e
perf record -q -g --call-graph fp ${events[0]:+--mmap-pages 1024} -e "$sample_event/freq=$freq/" "${events[@]}" \
	-o "$outdir/perf.data" -- "$exe" "$@"
status=$?
set -e
[ -s "$outdir/perf.data" ] || {
	echo "rotor-perf: perf record wrote nothing (exit status $status)" >&2
	exit 1
}
cleanup
added=
perf script -i "$outdir/perf.data" --show-mmap-events -F comm,tid,time,event,ip,sym,dso,trace \
	>"$outdir/perf-script.txt" 2>"$outdir/perf-script.log" || {
	echo "rotor-perf: perf script failed (see $outdir/perf-script.log)" >&2
	exit 1
}

# ---- report ------------------------------------------------------------------------------------
python3 - "$outdir/perf-script.txt" "$sample_event" "$freq" "$top" "$names_note" "$outdir" \
	<<'EOF' | tee "$outdir/report.txt"
import bisect, collections, os, re, subprocess, sys

path, event, freq, top, names_note, outdir = sys.argv[1:7]
top = int(top)
ENTRY = "rotor__task_slot_entry"
TRAMPOLINES = {"main_task"}  # rotor_run's main task: its body is the function it calls
LOOP = ("rotor__worker_loop", "worker_main", "rotor_run")

head_re = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+([\d.]+):\s+(?:\d+\s+)?(\S+):\s*(.*)$")
frame_re = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)$")
mmap_re = re.compile(r"PERF_RECORD_MMAP2? (\d+)/\d+: \[0x([0-9a-f]+)\(0x([0-9a-f]+)\) @ (0x[0-9a-f]+|0) .*?\]: [r-][w-]x\S* (/\S+)")
arg_re = re.compile(r'(\w+)=("(?:[^"]*)"|\S+)')

samples = []      # (tid, comm, time, [(sym, dso)])
spawns = {}       # id -> (name, fn address, pid)
switches = []     # (time, tid, "in"/"out", id)
maps = collections.defaultdict(list)  # pid -> [(start, end, pgoff, file)]

def num(v):
    return int(v, 16) if v.startswith("0x") else int(v)

def sym_of(s):
    return re.sub(r"\+0x[0-9a-f]+$", "", s)

with open(path, errors="replace") as f:
    cur = None
    for line in f:
        if "PERF_RECORD_MMAP" in line:
            m = mmap_re.search(line)
            if m:
                start, size = int(m.group(2), 16), int(m.group(3), 16)
                maps[int(m.group(1))].append((start, start + size, int(m.group(4), 16), m.group(5)))
            continue
        if cur is not None:
            m = frame_re.match(line)
            if m:
                cur[3].append((sym_of(m.group(2)), os.path.basename(m.group(3)), int(m.group(1), 16)))
                continue
            samples.append(cur)
            cur = None
        m = head_re.match(line)
        if not m:
            continue
        comm, tid, t, ev, rest = m.group(1), int(m.group(2)), float(m.group(3)), m.group(4), m.group(5)
        if ev.startswith("rotor:task_spawn"):
            a = dict(arg_re.findall(rest))
            name = a.get("name", '""').strip('"')
            spawns[num(a.get("id", "0"))] = (name, num(a.get("fn", "0")), comm, tid)
        elif ev.startswith("sdt_rotor:switch_"):
            a = dict(arg_re.findall(rest))
            switches.append((t, tid, "in" if "switch_in" in ev else "out", num(a.get("arg3", "0"))))
        elif ev.startswith(event):
            cur = (tid, comm, t, [])
    if cur is not None:
        samples.append(cur)

# ---- symbolize the spawned functions: runtime address -> file vaddr -> nearest symbol ----
symtabs, segs = {}, {}
def load_syms(fn):
    if fn not in symtabs:
        out = []
        for flags in (["--defined-only"], ["-D", "--defined-only"]):
            try:
                r = subprocess.run(["nm", "-n"] + flags + [fn], capture_output=True, text=True)
            except OSError:
                break
            for l in r.stdout.splitlines():
                p = l.split()
                if len(p) >= 3 and p[1] in "tTwW":
                    out.append((int(p[0], 16), p[2]))
            if out:
                break
        out.sort()
        symtabs[fn] = out
        segs[fn] = []
        r = subprocess.run(["readelf", "-lW", fn], capture_output=True, text=True)
        for l in r.stdout.splitlines():
            p = l.split()
            if p and p[0] == "LOAD":
                segs[fn].append((int(p[1], 16), int(p[2], 16), int(p[4], 16)))  # off vaddr filesz
    return symtabs[fn], segs[fn]

def symbolize(pid, addr):
    for start, end, pgoff, fn in maps.get(pid, []):
        if start <= addr < end:
            off = addr - start + pgoff
            syms, sg = load_syms(fn)
            vaddr = off
            for o, v, sz in sg:
                if o <= off < o + sz:
                    vaddr = off - o + v
            i = bisect.bisect_right([s[0] for s in syms], vaddr) - 1
            return syms[i][1] if i >= 0 else "0x%x" % addr
    return "0x%x" % addr

def proc_symbolize(tid, addr):
    """Mappings are per process; an event from another thread of it tries each process."""
    if tid in maps:
        return symbolize(tid, addr)
    for pid in maps:
        s = symbolize(pid, addr)
        if not s.startswith("0x"):
            return s
    return "0x%x" % addr

names_by_body = collections.defaultdict(collections.Counter)  # body -> Counter(name)
name_of_id = {}
body_of_id = {}
for tid_id, (name, fn, comm, tid) in spawns.items():
    body = proc_symbolize(tid, fn)
    body_of_id[tid_id] = body
    name_of_id[tid_id] = name if name else "task-%d" % tid_id
    names_by_body[body][name if name else None] += 1

# ---- who is running: the switch probes, if recorded ----
running = {}
last_task = {}  # a sample in the switch_out probe itself is still on the task's stack
sw = sorted(switches)
sw_i = 0

def task_body(chain):
    """(body key, displayed body) from a leaf-first chain, or None outside a task."""
    user = [f for f in chain if not f[1].startswith("[kernel")]
    for i, (s, _, _) in enumerate(user):
        if s == ENTRY:
            if i == 0:
                return ("(rotor: a task's start or end)", "")
            key = user[i - 1][0]
            if key.endswith("@plt") or key.startswith("rotor"):
                # A call into rotor that keeps no frame (a PLT stub, a small leaf) hides
                # the task's own function: the task is known, its body is not.
                return ("(a task in a call to rotor; its body is hidden)", "")
            shown = key
            if key in TRAMPOLINES and i >= 2:
                shown = user[i - 2][0]
            return (key, shown)
    # The slot's null return address ends the chain, but the slot entry's frame is missing:
    # the code running has no frame of its own (gcc keeps none in a leaf that needs no
    # stack, whatever -mno-omit-leaf-frame-pointer says), which hides its caller. Straight
    # from the slot entry, the leaf is the body itself.
    if len(user) >= 2 and user[-1][2] == 0:
        if len(user) == 2 and not user[0][0].startswith("rotor"):
            return (user[0][0], user[0][0])
        return ("(rotor: a task's start or end)" if user[0][0].startswith("rotor")
                else "(a task; frameless code hid its body)", "")
    return None

groups = collections.Counter()
leafs = collections.defaultdict(collections.Counter)
shown_body = {}
label = {}
threads = set()
for tid, comm, t, chain in sorted(samples, key=lambda s: s[2]):
    threads.add(tid)
    while sw_i < len(sw) and sw[sw_i][0] <= t:
        _, stid, kind, tid_id = sw[sw_i]
        running[stid] = tid_id if kind == "in" else None
        last_task[stid] = tid_id
        sw_i += 1
    leaf = chain[0][0] if chain else "[unknown]"
    if chain and chain[0][1] not in ("", "[unknown]") and chain[0][1].startswith("[kernel"):
        leaf = "[k] " + leaf
    tb = task_body(chain)
    cur = running.get(tid) if switches else None
    if cur is None and tb and switches:
        cur = last_task.get(tid)
    if cur is not None:
        name = name_of_id.get(cur, "task-%d" % cur)
        body = body_of_id.get(cur) or (tb[1] if tb else "?")
        explicit = cur in spawns and spawns[cur][0]
        key = ("task", name if explicit else "task-* (%s)" % body, body)
    elif tb and switches:
        key = ("task", "? (its switch_in was lost)", tb[1])
    elif tb:
        key = ("task", tb[0], tb[1])
    elif any(s in LOOP for s, _, _ in chain) or any(s.startswith("rotor__") for s, _, _ in chain[:3]):
        key = ("sched", "[scheduler: the worker loop, ring and timers, between tasks]", "")
    elif comm.startswith("rotor/w"):
        key = ("lost", "[unattributed on a worker: frame chain broken (libc or kernel code without frame pointers)]", "")
    else:
        key = ("other", "[thread '%s', not a worker]" % comm, "")
    groups[key] += 1
    leafs[key][leaf] += 1

total = sum(groups.values())
span = (max(s[2] for s in samples) - min(s[2] for s in samples)) if samples else 0
print("rotor perf: %d samples of %s at %s Hz over %.2f s on %d threads" % (total, event, freq, span, len(threads)))
print(names_note)
print("perf.data and the raw perf script output: %s" % outdir)
if len(spawns) > 10000 or (switches and len(switches) > 100000):
    print("note: each probe hit costs a few microseconds while recording (%d spawns%s): the "
          "spawning tasks look slower here than they are" % (len(spawns),
          ", %d switches" % len(switches) if switches else ""))
if not total:
    sys.exit(0)

def task_label(key):
    kind, k, body = key
    if switches or k.startswith("("):
        return k, body, ""
    names = names_by_body.get(k)
    if not names:
        return ("?" if spawns else "-"), body, ""
    explicit = sorted(n for n in names if n)
    dflt = names.get(None, 0)
    parts = []
    if explicit:
        parts.append(", ".join(explicit[:3]) + (", ..." if len(explicit) > 3 else ""))
    if dflt:
        parts.append("task-* (default names)")
    return " + ".join(parts), body, str(sum(names.values()))

print()
print("Time by task (a task's body is the function called from %s)" % ENTRY)
tasks = [(n, k) for k, n in groups.items() if k[0] == "task"]
wn = max([len(task_label(k)[0]) for _, k in tasks] + [20])
wb = max([len(task_label(k)[1]) for _, k in tasks] + [12])
print(("  %7s %6s  %-*s %-*s %s" % ("samples", "%", wn, "task", wb, "body",
                                    "tasks spawned" if not switches else "")).rstrip())
for n, k in sorted(tasks, reverse=True):
    name, body, count = task_label(k)
    print(("  %7d %5.1f%%  %-*s %-*s %s" % (n, 100.0 * n / total, wn, name, wb, body, count)).rstrip())
rest = [(n, k) for k, n in groups.items() if k[0] != "task"]
if rest:
    print("Not in a task")
    for n, k in sorted(rest, reverse=True):
        print("  %7d %5.1f%%  %s" % (n, 100.0 * n / total, k[1]))

print()
print("Hottest functions of each (self samples; [k] = kernel)")
for n, k in sorted(((n, k) for k, n in groups.items()), reverse=True):
    name = task_label(k)[0] if k[0] == "task" else k[1]
    print("  %s%s: %d" % (name, " (%s)" % k[2] if k[0] == "task" and k[2] else "", n))
    for sym, c in leafs[k].most_common(top):
        print("    %7d %5.1f%%  %s" % (c, 100.0 * c / n, sym))
EOF
exit $status
