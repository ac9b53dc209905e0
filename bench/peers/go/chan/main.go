// Peer of bench_sync: a buffered channel between two goroutines with GOMAXPROCS=2 (one
// sends n values, the other receives them). Prints one JSON line: messages per second and
// CPU nanoseconds per message.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func run(n, capacity int) (perSec, cpuNs float64) {
	ch := make(chan uintptr, capacity)
	done := make(chan uintptr)
	t0, c0 := time.Now(), cpuNanos()
	go func() {
		var sum uintptr
		for v := range ch {
			sum += v
		}
		done <- sum
	}()
	for i := 0; i < n; i++ {
		ch <- uintptr(i)
	}
	close(ch)
	<-done
	wall := time.Since(t0).Seconds()
	return float64(n) / wall, float64(cpuNanos()-c0) / float64(n)
}

func main() {
	n := flag.Int("n", 2000000, "messages")
	capacity := flag.Int("cap", 1024, "channel capacity")
	flag.Parse()
	runtime.GOMAXPROCS(2)
	run(*n/10, *capacity)
	perSec, cpu := run(*n, *capacity)
	fmt.Printf("{\"msgs_per_s\":%.1f,\"cpu_ns\":%.3f}\n", perSec, cpu)
}
