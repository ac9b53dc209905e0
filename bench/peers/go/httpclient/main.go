// Peer of bench_http_client: Go's net/http client as a Go service would use it, -conns
// goroutines each sending GET -url again and again for -seconds through one http.Client whose
// Transport keeps up to -conns idle keep-alive connections to the host, each body read to
// its end (io.Copy to io.Discard) and closed so that the connection goes back to the pool.
// Prints "requests N seconds S errors E"; bench_http_client measures the process's CPU.
//
//	httpclient -url URL [-conns N] [-seconds S] [-ca FILE] [-procs N]
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	conns := flag.Int("conns", 100, "requests in flight")
	seconds := flag.Float64("seconds", 3, "how long to run")
	ca := flag.String("ca", "", "PEM CA file to trust (https)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: leave it to Go)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "httpclient: -url is required")
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	tr := &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns,
		MaxConnsPerHost: *conns, IdleConnTimeout: 60 * time.Second}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fmt.Fprintln(os.Stderr, "httpclient:", err)
			os.Exit(1)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	client := &http.Client{Transport: tr}
	var requests, errors int64
	end := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				resp, err := client.Get(*url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					if atomic.AddInt64(&errors, 1) == 1 {
						fmt.Fprintln(os.Stderr, "httpclient: first error:", err)
					}
					time.Sleep(time.Millisecond)
					continue
				}
				atomic.AddInt64(&requests, 1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("requests %d seconds %.3f errors %d\n", requests, time.Since(start).Seconds(), errors)
}
