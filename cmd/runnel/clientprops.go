package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// clientProps are the client properties a --command-config file sets, by
// their Kafka client names.
type clientProps struct {
	bootstrap      string // bootstrap.servers
	clientID       string // client.id
	maxRequestSize int32  // max.request.size, 0 when not set
	isolation      string // isolation.level, "" when not set
	// security is security.protocol and the sasl.* and ssl.*
	// properties (clientsecurity.go).
	security securityProps
}

// knownProps are the properties --command-config understands; any other
// is an error rather than silently ignored.
var knownProps = append([]string{"bootstrap.servers", "client.id", "max.request.size", "isolation.level"}, securityPropNames...)

// props reads the --command-config file, once per command.
func (g *globals) props() (clientProps, error) {
	if g.commandConfig == "" {
		return clientProps{}, nil
	}
	return readClientProps(g.commandConfig)
}

// readClientProps reads a Java properties file of the simple kind Kafka's
// tools take: KEY=VALUE (or KEY:VALUE) lines, # and ! comments.
func readClientProps(path string) (clientProps, error) {
	f, err := os.Open(path)
	if err != nil {
		return clientProps{}, fmt.Errorf("--command-config: %w", err)
	}
	defer f.Close()
	var p clientProps
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return clientProps{}, fmt.Errorf("--command-config %s line %d: want KEY=VALUE, got %q", path, n, line)
		}
		key, value := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		bad := func(want string) error {
			return fmt.Errorf("--command-config %s line %d: %s=%q: want %s", path, n, key, value, want)
		}
		switch key {
		case "bootstrap.servers":
			p.bootstrap = value
		case "client.id":
			p.clientID = value
		case "max.request.size":
			v, err := strconv.ParseInt(value, 10, 32)
			if err != nil || v < minMessageBytes || v > maxMessageBytes {
				return clientProps{}, bad(fmt.Sprintf("bytes in [%d, %d]", minMessageBytes, maxMessageBytes))
			}
			p.maxRequestSize = int32(v)
		case "isolation.level":
			if !slices.Contains(isolationLevels, value) {
				return clientProps{}, bad(strings.Join(isolationLevels, " or "))
			}
			p.isolation = value
		default:
			if known, want := p.security.set(key, value); known {
				if want != "" {
					return clientProps{}, bad(want)
				}
				continue
			}
			return clientProps{}, fmt.Errorf("--command-config %s line %d: unknown property %q; known: %s",
				path, n, key, strings.Join(knownProps, ", "))
		}
	}
	if err := sc.Err(); err != nil {
		return clientProps{}, fmt.Errorf("--command-config %s: %w", path, err)
	}
	if err := p.security.check(); err != nil {
		return clientProps{}, fmt.Errorf("--command-config %s: %w", path, err)
	}
	return p, nil
}
