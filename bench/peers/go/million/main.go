// Peer of bench_million: n goroutines that each sleep one second, all started at once and
// waited for with a WaitGroup. Prints one JSON line: wall time from the first spawn until
// all are done, CPU time, and resident KiB per goroutine (peak VmHWM minus VmRSS before).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
	t0, c0 := time.Now(), cpuNanos()
	wg.Add(*n)
	for i := 0; i < *n; i++ {
		go func() {
			time.Sleep(*sleep)
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	cpu := cpuNanos() - c0
	peak := statusKiB("VmHWM")
	fmt.Printf("{\"wall_ms\":%.3f,\"cpu_ms\":%.3f,\"kib_per_task\":%.4f}\n",
		float64(wall.Nanoseconds())/1e6, float64(cpu)/1e6,
		float64(peak-before)/float64(*n))
}
