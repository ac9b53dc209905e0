//! Peer of bench_spawn: tokio task spawn + run + join on one worker (a current-thread
//! runtime, as the Go peer runs with GOMAXPROCS=1), one at a time and in batches. Prints the
//! Go peer's JSON keys: wall and CPU nanoseconds per task for each shape.
use rotor_tokio_peers::{arg, cpu_nanos};
use std::time::Instant;

async fn spawn_and_wait(n: usize, batch: usize) {
    let mut joins = Vec::with_capacity(batch);
    let mut i = 0;
    while i < n {
        for _ in 0..batch {
            joins.push(tokio::spawn(async {}));
        }
        for j in joins.drain(..) {
            j.await.unwrap();
        }
        i += batch;
    }
}

fn measure(rt: &tokio::runtime::Runtime, n: usize, batch: usize) -> (f64, f64) {
    rt.block_on(async {
        spawn_and_wait(batch * 10, batch).await;
        let (t0, c0) = (Instant::now(), cpu_nanos());
        spawn_and_wait(n, batch).await;
        (
            t0.elapsed().as_nanos() as f64 / n as f64,
            (cpu_nanos() - c0) as f64 / n as f64,
        )
    })
}

fn main() {
    let n = arg("-n", 1_000_000) as usize;
    let batch = arg("-batch", 100) as usize;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (one, one_cpu) = measure(&rt, n, 1);
    let (bat, bat_cpu) = measure(&rt, n, batch);
    println!(
        "{{\"one_ns\":{:.3},\"one_cpu_ns\":{:.3},\"batch_ns\":{:.3},\"batch_cpu_ns\":{:.3}}}",
        one, one_cpu, bat, bat_cpu
    );
}
