// Command echo is the integration tests' backend: a tiny HTTP server, built static and imported
// into a FROM-scratch image. It answers every request with who it is, so that tests can tell
// replicas apart.
//
// Environment: ECHO_PORTS (comma separated, default 80), ECHO_NAME (default: the hostname),
// ECHO_TLS_PORTS is not supported; keep it plain.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	name := os.Getenv("ECHO_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	ports := os.Getenv("ECHO_PORTS")
	if ports == "" {
		ports = "80"
	}
	var servers []*http.Server
	for _, p := range strings.Split(ports, ",") {
		port := strings.TrimSpace(p)
		srv := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Echo-Name", name)
				fmt.Fprintf(w, "name=%s port=%s host=%s path=%s xff=%s\n", name, port, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For"))
			})}
		servers = append(servers, srv)
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				fmt.Fprintln(os.Stderr, "echo:", err)
				os.Exit(1)
			}
		}()
	}
	// Stop at once on SIGTERM, so that container stops and restarts are quick.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(ctx)
	}
}
