package runnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves an App's metrics over HTTP (MetricsAddr): a
// registry of its own holding the App's instruments and the Go and process
// collectors, so the series exist from the first scrape.
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve returns
}

// startMetricsServer listens on addr and serves m's instruments.
func startMetricsServer(addr string, m *promMetrics) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.register(reg); err != nil {
		return nil, fmt.Errorf("stream: metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stream: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln) // returns ErrServerClosed on close
	}()
	return s, nil
}

func (s *metricsServer) addr() string { return s.ln.Addr().String() }

// close stops the server, letting scrapes under way finish for a moment.
func (s *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// MetricsAddr returns the address the metrics are served on (see the
// MetricsAddr option), or "" if they are not served.
func (a *App) MetricsAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metricsSrv == nil {
		return ""
	}
	return a.metricsSrv.addr()
}
