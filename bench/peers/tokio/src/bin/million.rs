//! Peer of bench_million: n tokio tasks that each sleep (default 1 s), all spawned at once on
//! the default multi-thread runtime and joined. Prints the JSON line the Go peer prints:
//! wall from the first spawn until all are joined, CPU, resident KiB per task (peak VmHWM
//! minus VmRSS before), how long the spawns took, and how many tasks had started when the
//! first one woke.
use rotor_tokio_peers::{arg, cpu_nanos, status_kib};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let n = arg("-n", 1_000_000) as usize;
    let sleep = Duration::from_millis(arg("-sleep-ms", 1000) as u64);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_time().build().unwrap();
    let before = status_kib("VmRSS");
    let started = Arc::new(AtomicI64::new(0));
    let ended = Arc::new(AtomicI64::new(0));
    let alive = Arc::new(AtomicI64::new(0));
    let (t0, c0) = (Instant::now(), cpu_nanos());
    let spawn = rt.block_on(async {
        let mut joins = Vec::with_capacity(n);
        for _ in 0..n {
            let (s, e, a) = (started.clone(), ended.clone(), alive.clone());
            joins.push(tokio::spawn(async move {
                s.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(sleep).await;
                if e.fetch_add(1, Ordering::Relaxed) == 0 {
                    a.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }));
        }
        let spawn = t0.elapsed();
        for j in joins {
            j.await.unwrap();
        }
        spawn
    });
    let wall = t0.elapsed();
    let cpu = cpu_nanos() - c0;
    let peak = status_kib("VmHWM");
    println!(
        "{{\"wall_ms\":{:.3},\"cpu_ms\":{:.3},\"kib_per_task\":{:.4},\"spawn_ms\":{:.3},\"alive\":{}}}",
        wall.as_secs_f64() * 1e3,
        cpu as f64 / 1e6,
        (peak - before) as f64 / n as f64,
        spawn.as_secs_f64() * 1e3,
        alive.load(Ordering::Relaxed)
    );
}
