package main

import (
	"flag"

	"github.com/runnel-dev/runnel/broker"
)

// brokerLimitFlags adds the client limits' flags (connection limits and
// the quota windows; the quotas themselves are set at run time with
// AlterClientQuotas) and returns the function that checks them once
// parsed.
func brokerLimitFlags(fs *flag.FlagSet, c *broker.ClientLimitsConfig) func() error {
	fs.IntVar(&c.MaxConnections, "max-connections", 0, "client connections the broker serves at once; more wait until one closes (max.connections; default no limit)")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", 0, "connections from one address; more are closed (max.connections.per.ip; default no limit)")
	overrides := fs.String("max-connections-per-ip-overrides", "", "per-address limits `IP:N,...` in place of --max-connections-per-ip (max.connections.per.ip.overrides)")
	fs.IntVar(&c.MaxConnectionCreationRate, "max-connection-creation-rate", 0, "connections per second the broker accepts; more wait (max.connection.creation.rate; default no limit; per address: the ip entities' connection_creation_rate quota)")
	fs.IntVar(&c.QuotaWindowNum, "quota-window-num", 0, "`N` quota windows: a client may burst N windows' worth of its quota (quota.window.num; default 11)")
	fs.DurationVar(&c.QuotaWindowSize, "quota-window-size", 0, "length of one quota window (quota.window.size.seconds; default 1s)")
	return func() error {
		if *overrides == "" {
			return nil
		}
		o, err := broker.ParseConnectionOverrides(*overrides)
		if err != nil {
			return err
		}
		c.MaxConnectionsPerIPOverrides = o
		return nil
	}
}
