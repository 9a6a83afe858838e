package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/console"
)

const consoleSynopsis = "console [--bootstrap-server HOST:PORT] [--command-config FILE] [--http-listen HOST:PORT] [--schema-registry-url URL] [--console-allow-writes]"

// runConsole serves the web console for the cluster at the seed brokers
// until the context ends. Once it listens it prints
// "runnel console on http://HOST:PORT/"; its log goes to standard error.
func runConsole(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "console", consoleSynopsis, true)
	listen := fs.String("http-listen", "127.0.0.1:8080", "serve the console on `HOST:PORT`; port 0 picks a free port")
	registryURL := fs.String("schema-registry-url", e.getenv("RUNNEL_SCHEMA_REGISTRY_URL"), "show the schemas of the registry at `URL` (env RUNNEL_SCHEMA_REGISTRY_URL; default none)")
	writes := fs.Bool("console-allow-writes", false, "let the console create and delete topics, produce, reset offsets of empty groups and alter topic configs")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(fs, "unexpected argument %q", pos[0])
	}
	// The console makes its own clients (one per message browse), so it
	// takes the seeds and options rather than a client: newClient
	// checks the flags and properties, and its client is the console's
	// first connection. The console's clients get the same security
	// settings (--command-config).
	probe, err := newClient(g)
	if err != nil {
		return err
	}
	seeds := probe.OptValue(kgo.SeedBrokers).([]string)
	clientID := probe.OptValue(kgo.ClientID).(string)
	probe.Close()
	props, err := g.props()
	if err != nil {
		return err
	}
	security, err := props.security.opts()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	c, err := console.New(console.Config{
		Brokers:     seeds,
		ClientOpts:  append([]kgo.Opt{kgo.ClientID(clientID), kgo.DialTimeout(5 * time.Second)}, security...),
		RegistryURL: *registryURL,
		AllowWrites: *writes,
		Logger:      logger,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	mode := "read-only"
	if *writes {
		mode = "writes allowed"
	}
	fmt.Fprintf(e.stdout, "runnel console on http://%s/ (%s)\n", ln.Addr(), mode)
	select {
	case err := <-served:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}
