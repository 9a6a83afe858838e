package broker_test

import (
	"context"
	"net"
	"testing"

	"github.com/runnel-dev/runnel/broker"
)

func TestParseRoutes(t *testing.T) {
	got, err := broker.ParseRoutes("127.0.0.11:9092=127.0.0.1:7001, 127.0.0.12:9093=127.0.0.1:7002,")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["127.0.0.11:9092"] != "127.0.0.1:7001" || got["127.0.0.12:9093"] != "127.0.0.1:7002" {
		t.Fatalf("routes %v", got)
	}
	for _, bad := range []string{"127.0.0.1:1", "a=127.0.0.1:1", "127.0.0.1:1=b", "127.0.0.1:1=127.0.0.1:2,127.0.0.1:1=127.0.0.1:3"} {
		if _, err := broker.ParseRoutes(bad); err == nil {
			t.Errorf("ParseRoutes(%q): no error", bad)
		}
	}
}

// RouteDial reaches the route's target, not the address asked for.
func TestRouteDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	// Nothing listens on port 1; the route leads to ln.
	dial := broker.RouteDial(map[string]string{"127.0.0.1:1": ln.Addr().String()})
	c, err := dial(context.Background(), "tcp", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-accepted
}
