package faultinject

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one way of a proxied link.
type Direction int

const (
	// Upstream is the way from the dialing side (a client, or a follower
	// fetching) to the proxy's target.
	Upstream Direction = iota
	// Downstream is the way from the target back to the dialing side.
	Downstream
)

func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// ErrClosed is returned by Proxy methods called after Close.
var ErrClosed = errors.New("faultinject: proxy closed")

// chunkQueue bounds the bytes one direction holds while it delays them:
// a full queue stops the reader, so a slow link pushes back on the sender
// as a slow network would.
const chunkQueue = 64

// Proxy forwards TCP connections from its own listener to one target
// address, and lets a test break the link between them: Cut, Delay, Drop
// and Heal. Every goroutine it starts is waited for by Close.
type Proxy struct {
	ln      net.Listener
	target  string
	wg      sync.WaitGroup  // the accept loop and every link's goroutines
	dropped [2]atomic.Int64 // bytes discarded per direction

	mu sync.Mutex // guards the following
	// cut refuses new connections (accepted, then closed at once).
	cut bool
	// delay is the fixed latency added to each direction.
	delay [2]time.Duration
	// drop discards each direction's bytes while set.
	drop   [2]bool
	links  map[*link]struct{}
	closed bool
}

// NewProxy listens on listen (host:port; port 0 picks a free one) and
// forwards every accepted connection to target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("faultinject: proxy listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address clients dial to reach the target through the proxy.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Cut closes every open connection and refuses new ones until Heal: the
// dialing side sees its connections reset and every reconnect closed at
// once, as a host whose peer went away.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	links := p.linksLocked()
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// Delay adds a fixed latency d to every byte sent in direction dir from
// now on (bytes already queued keep the delay they were read with). Zero
// removes it.
func (p *Proxy) Delay(dir Direction, d time.Duration) {
	p.mu.Lock()
	p.delay[dir] = d
	p.mu.Unlock()
}

// Drop makes the link one-way: bytes sent in direction dir are read and
// discarded while connections stay open, so the sender sees its writes
// succeed and the receiver hears nothing. A connection that lost bytes can
// never carry a valid Kafka stream again, so Heal closes it, as TCP would
// have reset it rather than deliver a stream with a hole in it.
func (p *Proxy) Drop(dir Direction) {
	p.mu.Lock()
	p.drop[dir] = true
	p.mu.Unlock()
}

// Dropped reports how many bytes Drop has discarded in direction dir so
// far: a test waits for it to grow to know the fault has bitten.
func (p *Proxy) Dropped(dir Direction) int64 { return p.dropped[dir].Load() }

// Heal undoes Cut, Delay and Drop: new connections are accepted again,
// and connections that lost bytes while dropping are closed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.delay = [2]time.Duration{}
	p.drop = [2]bool{}
	var torn []*link
	for l := range p.links {
		if l.lost {
			torn = append(torn, l)
		}
	}
	p.mu.Unlock()
	for _, l := range torn {
		l.close()
	}
}

// Conns reports how many proxied connections are open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops the listener, closes every connection and waits for all the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	links := p.linksLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return err
}

// REQUIRES: p.mu held.
func (p *Proxy) linksLocked() []*link {
	out := make([]*link, 0, len(p.links))
	for l := range p.links {
		out = append(out, l)
	}
	return out
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed by Close
		}
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		// The dial runs on its own goroutine so a slow or unreachable
		// target never stops the proxy from accepting (and refusing).
		ctx, cancel := context.WithCancel(context.Background())
		l := &link{p: p, client: c, ctx: ctx, cancel: cancel, done: ctx.Done()}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// admit decides the fate of n bytes read in direction dir of l: the delay
// to add, or drop. Deciding and marking l as having lost bytes under one
// lock means a concurrent Heal either sees the mark and closes l, or ran
// first and the bytes pass.
func (p *Proxy) admit(l *link, dir Direction, n int) (delay time.Duration, drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop[dir] {
		l.lost = true
		p.dropped[dir].Add(int64(n))
		return 0, true
	}
	return p.delay[dir], false
}

// link is one proxied connection: two TCP connections and, per direction,
// a reader that stamps each chunk with its due time and a writer that
// delivers it then.
type link struct {
	p      *Proxy
	client net.Conn
	ctx    context.Context // cancelled by close; ends the dial
	cancel context.CancelFunc
	done   <-chan struct{} // ctx.Done()

	// lost says bytes were dropped. Guarded by p.mu.
	lost bool

	mu     sync.Mutex // guards the following
	server net.Conn   // nil until dialed
	closed bool
}

type chunk struct {
	b   []byte
	due time.Time
}

func (l *link) run() {
	defer l.p.wg.Done()
	defer l.p.remove(l)
	var d net.Dialer
	server, err := d.DialContext(l.ctx, "tcp", l.p.target)
	if err != nil {
		l.close()
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		server.Close()
		return
	}
	l.server = server
	l.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(4)
	up := make(chan chunk, chunkQueue)
	down := make(chan chunk, chunkQueue)
	go l.read(&wg, Upstream, l.client, up)
	go l.write(&wg, server, up)
	go l.read(&wg, Downstream, server, down)
	go l.write(&wg, l.client, down)
	wg.Wait()
}

// read copies src into q in chunks, stamped with the direction's delay,
// or discards them while the direction drops. It closes q at EOF so the
// writer delivers what is queued, then closes the link.
func (l *link) read(wg *sync.WaitGroup, dir Direction, src net.Conn, q chan<- chunk) {
	defer wg.Done()
	defer close(q)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if delay, drop := l.p.admit(l, dir, n); !drop {
				c := chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
				select {
				case q <- c:
				case <-l.done:
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// write delivers q's chunks to dst at their due times, then closes the
// link: one side's end is the whole link's end (Kafka never half-closes).
func (l *link) write(wg *sync.WaitGroup, dst net.Conn, q <-chan chunk) {
	defer wg.Done()
	defer l.close()
	var timer *time.Timer
	for c := range q {
		if wait := time.Until(c.due); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-l.done:
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// close closes both connections; it is safe to call more than once and
// from any goroutine.
func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.cancel()
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
}

// RouteDialer returns a dial function that sends connections for each key
// of routes (a host:port a client was told about, such as a broker's
// advertised address) to its value (a Proxy's Addr) instead, and dials
// every other address as given. It fits kgo.Dialer, so a Kafka client
// whose brokers advertise their own addresses still goes through the
// test's proxies.
func RouteDialer(routes map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	routes = maps.Clone(routes)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := routes[addr]; ok {
			addr = to
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}
