// Peer of bench_http: a Go net/http server for GET /plaintext, the Go way (a ServeMux and a
// handler), with the header set of examples/http_server as far as net/http allows: Content-Type
// text/plain, Content-Length 13, Server, no Date (a nil header value suppresses it); net/http
// writes them in its own order. Other paths get the mux's 404. Prints "listening on HOST:PORT"
// and stops on SIGINT/SIGTERM.
//
//	nethttp [-host ADDR] [-port N] [-procs N]
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

var body = []byte("Hello, World!")

func plaintext(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Server"] = []string{"go"}
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{"13"}
	h["Date"] = nil
	w.Write(body)
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8080, "port to listen on (0: any free port)")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: leave it to Go)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nethttp:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", plaintext)
	srv := &http.Server{Handler: mux}
	fmt.Printf("listening on %s (GOMAXPROCS %d)\n", ln.Addr(), runtime.GOMAXPROCS(0))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "nethttp: signal %v, stopping\n", s)
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "nethttp:", err)
		os.Exit(1)
	}
	fmt.Println("stopped")
}
