"""rotor-gdb.py: list the tasks of a rotor process in gdb, running or crashed (a core file).

    (gdb) source tools/rotor-gdb.py
    (gdb) rotor tasks                 every task: id, name, worker, state and backtrace
    (gdb) rotor tasks sleeper         only tasks whose name contains "sleeper"
    (gdb) rotor tasks -n              without backtraces

Tasks are found from the runtime list rotor__runtimes (lib/core/runtime.c) and each worker's
live list (w->live). A running task's backtrace is its worker thread's. A suspended task's
registers were pushed on its own stack by the context switch, and slot->ctx.sp points at
them: on x86-64 [r15 r14 r13 r12 rbx rbp ret] upward (on aarch64 x19..x28, x29, x30); the
helper takes the frame pointer and return address from there and follows the frame-pointer
chain, which rotor builds keep, down to the slot's first frame (frame pointer 0). Needs the
library built with debug information (-g; the default RelWithDebInfo build has it).
Frames of functions that keep no frame pointer of their own (small leaf functions, libc)
do not appear in a suspended task's backtrace; inlined calls do, marked "inlined".
"""

import gdb

STATES = {1: "NEW", 2: "READY", 3: "RUNNING", 4: "WAITING", 5: "DONE", 6: "FREE"}
MAX_FRAMES = 64


def _state_names():
    try:
        t = gdb.lookup_type("enum rotor__task_state")
        return {int(f.enumval): f.name.replace("ROTOR__T_", "") for f in t.fields()}
    except gdb.error:
        return STATES


def _read_ptr(addr):
    ptr = gdb.lookup_type("void").pointer()
    return int(gdb.Value(addr).cast(ptr.pointer()).dereference())


def _arch():
    try:
        return gdb.selected_frame().architecture().name()
    except gdb.error:
        return gdb.selected_inferior().architecture().name()


def _describe_pc(pc, is_return):
    """Lines for one frame: the function at pc, its inlined callers, file:line."""
    look = pc - 1 if is_return else pc
    funcs = []
    try:
        block = gdb.block_for_pc(look)
    except RuntimeError:
        block = None
    while block is not None:
        if block.function is not None:
            funcs.append(block.function.print_name)
        block = block.superblock
    sal = gdb.find_pc_line(look)
    where = ""
    if sal.symtab is not None:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    if not funcs:
        name = gdb.execute("info symbol 0x%x" % look, to_string=True).strip()
        name = name.split(" in section")[0] if "No symbol" not in name else "??"
        funcs = [name]
    # Innermost first: every function but the outermost was inlined into it.
    return [(f, i < len(funcs) - 1, where if i == 0 else "") for i, f in enumerate(funcs)]


def _suspended_frames(slot):
    """pcs of a suspended task, innermost first, from its saved context."""
    ctx = slot["ctx"]
    arch = _arch()
    names = [f.name for f in ctx.type.fields()]
    if "sp" in names:
        sp = int(ctx["sp"])
        if "aarch64" in arch:
            fp, pc = _read_ptr(sp + 10 * 8), _read_ptr(sp + 11 * 8)
        else:
            fp, pc = _read_ptr(sp + 5 * 8), _read_ptr(sp + 6 * 8)
    else:  # the ucontext build
        mc = ctx["uc"]["uc_mcontext"]
        if "aarch64" in arch:
            fp, pc = int(mc["regs"][29]), int(mc["pc"])
        else:
            gregs = mc["gregs"]
            fp, pc = int(gregs[10]), int(gregs[16])  # REG_RBP, REG_RIP
    pcs = [pc]
    while fp and len(pcs) < MAX_FRAMES:
        try:
            ret = _read_ptr(fp + 8)
            fp = _read_ptr(fp)
        except gdb.MemoryError:
            pcs.append(None)
            break
        if not ret:
            break
        pcs.append(ret)
    return pcs


def _thread_frames(thread):
    """(pc, description) lines of a thread's stack, from gdb's own unwinder."""
    saved = gdb.selected_thread()
    out = []
    try:
        thread.switch()
        frame = gdb.newest_frame()
        while frame is not None and len(out) < MAX_FRAMES and frame.pc():
            fn = frame.function()
            name = fn.print_name if fn else (frame.name() or "??")
            sal = frame.find_sal()
            where = " at %s:%d" % (sal.symtab.filename, sal.line) if sal.symtab else ""
            inl = frame.type() == gdb.INLINE_FRAME
            out.append((frame.pc(), name, inl, where))
            try:
                frame = frame.older()
            except gdb.error:
                break
    finally:
        if saved is not None:
            saved.switch()
    return out


def _worker_threads(rt):
    """worker index -> gdb thread: by rotor__self (a worker's thread-local pointer), else by
    the pthread_t the runtime stored."""
    found = {}
    workers = {int(rt["w"][i]): i for i in range(int(rt["n"]))}
    saved = gdb.selected_thread()
    for th in gdb.selected_inferior().threads():
        try:
            th.switch()
            w = int(gdb.parse_and_eval("rotor__self"))
            if w in workers:
                found[workers[w]] = th
                continue
        except gdb.error:
            pass
        try:
            handle = int.from_bytes(th.handle(), "little")
        except (gdb.error, AttributeError, TypeError):
            continue
        for i in range(int(rt["n"])):
            if i not in found and int(rt["w"][i]["thread"]) == handle and handle:
                found[i] = th
    if saved is not None:
        saved.switch()
    return found


def _task_name(t):
    if int(t["name_state"]) == 2:
        return t["name"].string()
    return "task-%d" % int(t["id"])


def _fn_name(addr):
    if not addr:
        return "?"
    lines = _describe_pc(addr, False)
    return lines[-1][0]


def _runtimes():
    try:
        head = gdb.parse_and_eval("rotor__runtimes")
    except gdb.error as e:
        raise gdb.GdbError(
            "rotor: no symbol rotor__runtimes (%s): is this a rotor program, built with -g?" % e)
    rt = head
    while int(rt):
        yield rt.dereference()
        rt = rt["dbg_next"]


class RotorPrefix(gdb.Command):
    """rotor: commands for rotor programs (rotor tasks)."""

    def __init__(self):
        super().__init__("rotor", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class RotorTasks(gdb.Command):
    """List every task of every rotor runtime: id, name, worker, state, backtrace.
Usage: rotor tasks [-n] [NAME]
  -n    no backtraces
  NAME  only tasks whose name contains NAME"""

    def __init__(self):
        super().__init__("rotor tasks", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        want_bt = "-n" not in args
        names = [a for a in args if a != "-n"]
        states = _state_names()
        count = 0
        self.by_state = {}
        for rt in _runtimes():
            n = int(rt["n"])
            rstate = {1: "RUNNING", 2: "STOPPING", 3: "STOPPED"}.get(int(rt["state"]), "?")
            print("runtime 0x%x: %d workers, %s" % (int(rt.address), n, rstate))
            threads = _worker_threads(rt)
            for i in range(n):
                w = rt["w"][i]
                th = threads.get(i)
                thr = ("thread %d (LWP %d)" % (th.num, th.ptid[1])) if th else "thread not found"
                print("  worker %d: %s, %d live tasks" % (i, thr, int(w["nlive"])))
                t = w["live"]
                current = int(w["current"])
                while int(t):
                    task = t.dereference()
                    count += self.show(task, i, int(t) == current, th, states, want_bt, names)
                    t = task["live_next"]
        if count == 0 and not names:
            print("rotor: no runtime alive (rotor__runtimes is empty)")
        elif count:
            print("%d task%s listed: %s" % (count, "" if count == 1 else "s", ", ".join(
                "%d %s" % (n, st) for st, n in sorted(self.by_state.items()))))

    def show(self, t, worker, running, thread, states, want_bt, names):
        name = _task_name(t)
        if names and not any(n in name for n in names):
            return 0
        state = states.get(int(t["state"]), str(int(t["state"])))
        self.by_state[state] = self.by_state.get(state, 0) + 1
        body = _fn_name(int(t["fn"]))
        print("    task %d \"%s\"  worker %d  %s  body %s" % (int(t["id"]), name, worker, state, body))
        if not want_bt:
            return 1
        if running and thread is not None:
            for k, (pc, fn, inl, where) in enumerate(_thread_frames(thread)):
                print("      #%-2d 0x%016x %s%s%s" % (k, pc, fn, " (inlined)" if inl else "", where))
        elif int(t["slot"]):
            k = 0
            try:
                pcs = _suspended_frames(t["slot"].dereference())
            except gdb.MemoryError:
                pcs = [None]
            for j, pc in enumerate(pcs):
                if pc is None:
                    print("      (stack unreadable%s)" % (
                        "" if j else ": a core written by gdb's gcore lacks the stacks of "
                        "an arena with MADV_GUARD_INSTALL guards; a kernel core has them, and "
                        "so does gcore under ROTOR_DISABLE=guard_madvise"))
                    break
                for fn, inl, where in _describe_pc(pc, j > 0):
                    print("      #%-2d 0x%016x %s%s%s" % (k, pc, fn, " (inlined)" if inl else "", where))
                    k += 1
        else:
            print("      (not started yet: no stack)")
        return 1


RotorPrefix()
RotorTasks()
