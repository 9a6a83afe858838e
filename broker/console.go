package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/console"
)

// The web console, served on Config.HTTPListen (package console). Like
// the schema registry it is a Kafka client of this broker, so it shows the
// whole cluster as any client would see it, and the same console runs
// against Apache Kafka from "runnel console". It logs in as configured
// (Config.ConsoleBootstrap, ConsoleClientOpts), else anonymously on the
// inter-broker listener.

// webConsole is the running console of a broker.
type webConsole struct {
	ln  net.Listener
	srv *http.Server
	c   *console.Console
}

// startConsole starts the console when Config.HTTPListen is set. It needs
// the Kafka listener accepting (it is a client of it), and the registry
// started when there is one (it shows its schemas).
func (b *Broker) startConsole() error {
	if b.cfg.HTTPListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("broker: http listen: %w", err)
	}
	registryURL := ""
	if r := b.RegistryAddr(); r != "" {
		registryURL = "http://" + r
	}
	seeds := b.cfg.ConsoleBootstrap
	if len(seeds) == 0 {
		seeds = []string{b.advertised}
	}
	c, err := console.New(console.Config{
		Brokers:     seeds,
		RegistryURL: registryURL,
		ClientOpts:  append([]kgo.Opt{kgo.ClientID("runnel-console")}, b.cfg.ConsoleClientOpts...),
		AllowWrites: b.cfg.ConsoleAllowWrites,
		Logger:      b.logger.With("component", "console"),
		Traffic:     b.traffic,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("broker: console: %w", err)
	}
	wc := &webConsole{ln: ln, c: c, srv: &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	b.console = wc
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := wc.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Error("console server", "err", err)
		}
	}()
	return nil
}

// close stops serving, waiting a little for pages being rendered, then
// closes the console's Kafka client while the broker still runs.
func (wc *webConsole) close() {
	if wc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if wc.srv.Shutdown(ctx) != nil {
		wc.srv.Close()
	}
	cancel()
	wc.c.Close()
}

// HTTPAddr returns the host:port serving the web console, or "" when it is
// off.
func (b *Broker) HTTPAddr() string {
	if b.console == nil {
		return ""
	}
	return b.console.ln.Addr().String()
}

// traffic reads this broker's byte counters by topic for the console's
// bytes in/out charts. In a cluster they are this broker's share: the
// partitions it leads.
func (b *Broker) traffic() map[string]console.Traffic {
	out := map[string]console.Traffic{}
	read := func(v *prometheus.CounterVec, set func(t *console.Traffic, n int64)) {
		ch := make(chan prometheus.Metric, 64)
		go func() { v.Collect(ch); close(ch) }()
		for m := range ch {
			var pb dto.Metric
			if m.Write(&pb) != nil || len(pb.GetLabel()) == 0 {
				continue
			}
			topic := pb.GetLabel()[0].GetValue() // the one label, topic
			t := out[topic]
			set(&t, int64(pb.GetCounter().GetValue()))
			out[topic] = t
		}
	}
	read(b.metrics.bytesIn, func(t *console.Traffic, n int64) { t.In = n })
	read(b.metrics.bytesOut, func(t *console.Traffic, n int64) { t.Out = n })
	return out
}
