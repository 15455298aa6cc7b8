package admin

import (
	"net/http"
	"net/http/pprof"
)

// WithPprof serves Go's profiles under /debug/pprof/ beside h's endpoints (--admin-pprof, off by
// default: a profile costs CPU and shows the process's internals to whoever reaches the admin
// address, which is loopback unless the operator chose otherwise). Benchmarks take vhost-gen's
// CPU profile from it.
func WithPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
