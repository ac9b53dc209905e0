//! What the tokio peers of rotor's bench programs share: process CPU time and /proc/self/status.

use std::fs;

/// User + system CPU time of the whole process, in nanoseconds.
pub fn cpu_nanos() -> i64 {
    let mut ru = std::mem::MaybeUninit::<Rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        getrusage(0, ru.as_mut_ptr());
        let ru = ru.assume_init();
        (ru.utime.sec * 1_000_000_000 + ru.utime.usec * 1000)
            + (ru.stime.sec * 1_000_000_000 + ru.stime.usec * 1000)
    }
}

/// A field of /proc/self/status in KiB (VmRSS, VmHWM), -1 when absent.
pub fn status_kib(field: &str) -> i64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            return rest.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(-1);
        }
    }
    -1
}

/// The value after `--name` on the command line, or `default`.
pub fn arg(name: &str, default: i64) -> i64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}
