package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/internal/nexmark"
)

// checkNexmarkFormat checks -nexmark-format against the other flags: the
// Avro form needs a schema registry, which only Runnel's in-process broker
// has here, and the Kafka Streams queries read JSON.
func checkNexmarkFormat(format string, kstreams bool, brokers []string) error {
	switch format {
	case "json":
		return nil
	case "avro":
		if kstreams {
			return errors.New("-nexmark-format avro: the Kafka Streams queries read JSON; run without -kstreams")
		}
		if slices.ContainsFunc(brokers, func(b string) bool { return b != "runnel" }) {
			return errors.New("-nexmark-format avro needs the in-process broker's registry: -nexmark-broker runnel")
		}
		return nil
	}
	return fmt.Errorf("-nexmark-format %q: want json or avro", format)
}

// registryListen is the in-process broker's registry address: one is
// started only for Avro events.
func (b *bench) registryListen() string {
	if b.nexmarkFormat == "avro" {
		return "127.0.0.1:0"
	}
	return ""
}

// setNexmarkSerdes sets the nexmark events' serdes once the broker (and
// its registry, for Avro) is up.
func (b *bench) setNexmarkSerdes() error {
	if b.nexmarkFormat != "avro" {
		b.nexSerdes = nexmark.JSON
		return nil
	}
	cl, err := sr.NewClient(sr.URLs("http://" + b.broker.RegistryAddr()))
	if err != nil {
		return err
	}
	s, err := nexmark.AvroSerdes(cl)
	if err != nil {
		return err
	}
	b.nexSerdes = s
	return nil
}
