// Peer of bench_million: n goroutines that each sleep one second, all started at once and
// waited for with a WaitGroup. Prints one JSON line: wall time from the first spawn until
// all are done, CPU time, resident KiB per goroutine (peak VmHWM minus VmRSS before), how
// long the go statements took, and how many goroutines had started when the first one woke.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func statusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, field+":") {
			v := strings.Fields(line[len(field)+1:])
			if len(v) > 0 {
				n, _ := strconv.ParseInt(v[0], 10, 64)
				return n
			}
		}
	}
	return -1
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	n := flag.Int("n", 1000000, "goroutines")
	sleep := flag.Duration("sleep", time.Second, "how long each goroutine sleeps")
	flag.Parse()

	before := statusKiB("VmRSS")
	var wg sync.WaitGroup
	var started, ended, alive int64
	t0, c0 := time.Now(), cpuNanos()
	wg.Add(*n)
	for i := 0; i < *n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			time.Sleep(*sleep)
			if atomic.AddInt64(&ended, 1) == 1 {
				atomic.StoreInt64(&alive, atomic.LoadInt64(&started))
			}
			wg.Done()
		}()
	}
	spawn := time.Since(t0)
	wg.Wait()
	wall := time.Since(t0)
	cpu := cpuNanos() - c0
	peak := statusKiB("VmHWM")
	fmt.Printf("{\"wall_ms\":%.3f,\"cpu_ms\":%.3f,\"kib_per_task\":%.4f,"+
		"\"spawn_ms\":%.3f,\"alive\":%d}\n",
		float64(wall.Nanoseconds())/1e6, float64(cpu)/1e6,
		float64(peak-before)/float64(*n), float64(spawn.Nanoseconds())/1e6,
		atomic.LoadInt64(&alive))
}
