//! Peer of bench_submit: work submitted from a thread that is no worker (the main thread)
//! into a tokio multi-thread runtime of 2 workers with Handle::spawn: n spawns, then every
//! JoinHandle waited for (submits/s, CPU per submit), and one-at-a-time round trips
//! (spawn, then block on its JoinHandle: µs). Prints the JSON keys of asyncio_submit.py.
use rotor_tokio_peers::{arg, cpu_nanos};
use std::time::Instant;

fn submit_and_wait(h: &tokio::runtime::Handle, n: usize) {
    let joins: Vec<_> = (0..n).map(|i| h.spawn(async move { i })).collect();
    h.block_on(async {
        for (i, j) in joins.into_iter().enumerate() {
            assert_eq!(j.await.unwrap(), i);
        }
    });
}

fn main() {
    let n = arg("--n", 100_000) as usize;
    let m = arg("--rt", 5000) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let h = rt.handle().clone();
    submit_and_wait(&h, 1000);
    let (t0, c0) = (Instant::now(), cpu_nanos());
    submit_and_wait(&h, n);
    let (wall, cpu) = (t0.elapsed(), cpu_nanos() - c0);
    let (t1, c1) = (Instant::now(), cpu_nanos());
    for i in 0..m {
        assert_eq!(h.block_on(h.spawn(async move { i })).unwrap(), i);
    }
    let (rt_wall, rt_cpu) = (t1.elapsed(), cpu_nanos() - c1);
    println!(
        "{{\"submit_per_s\":{:.1},\"submit_cpu_ns\":{:.1},\"rt_us\":{:.3},\"rt_cpu_us\":{:.3}}}",
        n as f64 / wall.as_secs_f64(),
        cpu as f64 / n as f64,
        rt_wall.as_secs_f64() * 1e6 / m as f64,
        rt_cpu as f64 / 1e3 / m as f64
    );
}
