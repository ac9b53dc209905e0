// Peer of bench_spawn: goroutine spawn + run + wait with GOMAXPROCS=1, one at a time and
// in batches. Prints one JSON line: wall and CPU nanoseconds per goroutine for each shape.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// spawnAndWait starts n goroutines that return at once, batch at a time, waiting for each
// batch before the next one (batch 1: one at a time).
func spawnAndWait(n, batch int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i += batch {
		wg.Add(batch)
		for j := 0; j < batch; j++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
}

func measure(n, batch int) (wall, cpu float64) {
	spawnAndWait(batch*10, batch)
	t0, c0 := time.Now(), cpuNanos()
	spawnAndWait(n, batch)
	wall = float64(time.Since(t0).Nanoseconds()) / float64(n)
	cpu = float64(cpuNanos()-c0) / float64(n)
	return
}

func main() {
	n := flag.Int("n", 1000000, "goroutines per shape")
	batch := flag.Int("batch", 100, "batch size of the second shape")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	oneWall, oneCPU := measure(*n, 1)
	batWall, batCPU := measure(*n, *batch)
	fmt.Printf("{\"one_ns\":%.3f,\"one_cpu_ns\":%.3f,\"batch_ns\":%.3f,\"batch_cpu_ns\":%.3f}\n",
		oneWall, oneCPU, batWall, batCPU)
}
