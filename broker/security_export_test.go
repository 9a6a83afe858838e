package broker

import "slices"

// Principals lists the principals of the broker's open connections,
// sorted, for tests of authentication.
func (b *Broker) Principals() []string {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	var out []string
	for c := range b.conns {
		if p := c.sec.shown.Load(); p != nil {
			out = append(out, *p)
		}
	}
	slices.Sort(out)
	return out
}

// NumConns is the number of client connections the broker holds.
func (b *Broker) NumConns() int {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	return len(b.conns)
}
