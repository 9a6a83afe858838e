package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/runnel-dev/runnel/registry"
)

// The schema registry, served on Config.RegistryListen: the Confluent
// Schema Registry REST API (package registry), its records in the
// compacted topic _schemas of this cluster. The registry reads and writes
// that topic through a Kafka client connected to this broker, as a
// Confluent registry beside a Kafka cluster would: so the topic
// replicates, compacts and survives restarts like any other.
//
// In a cluster every broker serves the registry: reads from its own copy
// of the log, writes forwarded to the registry of the broker leading
// _schemas partition 0, so one registry hands out every id (see package
// registry, "Clusters").

// schemaRegistry is the running registry of a broker.
type schemaRegistry struct {
	ln  net.Listener
	srv *http.Server
	reg *registry.Registry
	log *registry.KafkaLog
}

// startRegistry starts the registry when Config.RegistryListen is set. It
// needs the Kafka listener accepting (it is a client of it).
func (b *Broker) startRegistry(ctx context.Context) (err error) {
	if b.cfg.RegistryListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", b.cfg.RegistryListen)
	if err != nil {
		return fmt.Errorf("broker: registry listen: %w", err)
	}
	r := &schemaRegistry{ln: ln}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	r.log, err = registry.OpenKafkaLog(ctx, registry.KafkaLogConfig{Brokers: []string{b.advertised}, ClientOpts: b.interBrokerClientOpts()})
	if err != nil {
		return fmt.Errorf("broker: registry: %w", err)
	}
	r.reg, err = registry.New(ctx, r.log, registry.Config{
		Logger: b.logger.With("component", "registry"),
		Leader: r.log.Leader,
		Node:   b.cfg.NodeID,
		URL:    "http://" + b.registryAdvertised(ln.Addr()),
	})
	if err != nil {
		return fmt.Errorf("broker: registry: %w", err)
	}
	r.srv = &http.Server{Handler: r.reg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	b.registry = r
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.logger.Error("registry server", "err", err)
		}
	}()
	return nil
}

// registryAdvertised is the host:port other brokers reach the registry
// at: the listener's, with the broker's advertised host when it listens
// on every interface.
func (b *Broker) registryAdvertised(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = b.host
	}
	return net.JoinHostPort(host, port)
}

// close stops the registry, then serving, then its Kafka client: while
// the broker still runs, so the client leaves cleanly. The registry goes
// first so that a request waiting for its write to be read back fails at
// once, and Shutdown then waits for the handlers to return.
func (r *schemaRegistry) close() {
	if r == nil {
		return
	}
	if r.reg != nil {
		r.reg.Close()
	}
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if r.srv.Shutdown(ctx) != nil {
			r.srv.Close()
		}
		cancel()
	} else {
		r.ln.Close()
	}
	if r.log != nil {
		r.log.Close()
	}
}

// RegistryAddr returns the host:port serving the schema registry, or ""
// when it is off.
func (b *Broker) RegistryAddr() string {
	if b.registry == nil {
		return ""
	}
	return b.registry.ln.Addr().String()
}
