package console

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The topology graph of a stream application: parsed from the text
// topology.Describe prints (Kafka Streams' TopologyDescription layout, so
// a Kafka Streams description reads too), laid out in layers, and drawn
// as SVG by app.html. The layout is a plain layered one: a node's layer is
// its longest path from a root (a source topic), nodes within a layer are
// ordered by the mean position of their parents, stores sit in the layer
// of the processors using them, and a store's changelog topic in the layer
// below it.

// TopoNode is one node of the drawn graph.
type TopoNode struct {
	// Kind is source, processor, sink, topic or store.
	Kind string `json:"kind"`
	// Role says what a topic is to the application: "repartition" (it
	// writes and reads it back), "changelog" (a store's), or "" (an input
	// or output).
	Role  string `json:"role,omitempty"`
	Name  string `json:"name"`
	Label string `json:"label"` // Name, shortened to fit the box
	// Link is the page of a topic or of a store's changelog topic.
	Link string `json:"link,omitempty"`
	X    int    `json:"x"`
	Y    int    `json:"y"`
}

// TopoEdge is a line between two nodes; Store marks a processor's access
// to a store (no direction).
type TopoEdge struct {
	X1    int  `json:"x1"`
	Y1    int  `json:"y1"`
	X2    int  `json:"x2"`
	Y2    int  `json:"y2"`
	Store bool `json:"store,omitempty"`
}

// TopoSub is one sub-topology, drawn as a box at Y of height H.
type TopoSub struct {
	ID     int        `json:"id"`
	Global bool       `json:"global,omitempty"`
	Y      int        `json:"y"`
	H      int        `json:"h"`
	Nodes  []TopoNode `json:"nodes"`
	Edges  []TopoEdge `json:"edges"`
}

// TopoGraph is the laid-out graph; W and H are the SVG's size.
type TopoGraph struct {
	Subs []TopoSub `json:"subs"`
	W    int       `json:"w"`
	H    int       `json:"h"`
}

// Layout constants, in SVG units.
const (
	topoNodeW  = 180
	topoNodeH  = 32
	topoColW   = 200
	topoRowH   = 64
	topoPad    = 16
	topoHeader = 26 // a sub-topology box's title
	topoLabel  = 24 // characters that fit in a node box
	// maxTopoNodes bounds the nodes drawn (the description is read from
	// a topic anyone may write to).
	maxTopoNodes = 1000
)

// NodeW and NodeH are the size of a node's box, for the template.
func (TopoGraph) NodeW() int { return topoNodeW }
func (TopoGraph) NodeH() int { return topoNodeH }

// parsedNode is a node as the description gives it.
type parsedNode struct {
	kind     string // source, processor, sink
	name     string
	topics   []string // a source's topics, a sink's topic
	stores   []string // a processor's stores
	children []string
}

type parsedSub struct {
	id     int
	global bool
	nodes  []*parsedNode
}

// parseDescription reads the text of topology.Describe.
func parseDescription(text string) ([]*parsedSub, error) {
	var subs []*parsedSub
	var cur *parsedSub
	var node *parsedNode
	for i, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(line)
		bad := func() error { return fmt.Errorf("console: topology line %d: cannot read %q", i+1, l) }
		switch {
		case l == "" || l == "Topologies:" || strings.HasPrefix(l, "<--"):
		case strings.HasPrefix(l, "Co-partitioned topics:"):
			cur, node = nil, nil
		case strings.HasPrefix(l, "Sub-topology:"):
			f := strings.Fields(strings.TrimPrefix(l, "Sub-topology:"))
			if len(f) == 0 {
				return nil, bad()
			}
			id, err := strconv.Atoi(f[0])
			if err != nil {
				return nil, bad()
			}
			cur = &parsedSub{id: id, global: strings.Contains(l, "global store")}
			subs = append(subs, cur)
			node = nil
		case cur == nil:
			// co-partition groups and what follows them
		case strings.HasPrefix(l, "-->"):
			if node == nil {
				return nil, bad()
			}
			for _, c := range splitList(strings.TrimPrefix(l, "-->")) {
				if c != "none" {
					node.children = append(node.children, c)
				}
			}
		default:
			kind, rest, ok := strings.Cut(l, ":")
			if !ok {
				return nil, bad()
			}
			name, attrs, _ := strings.Cut(strings.TrimSpace(rest), " (")
			attrs = strings.TrimSuffix(attrs, ")")
			node = &parsedNode{name: strings.TrimSpace(name)}
			switch kind {
			case "Source":
				node.kind = "source"
				node.topics = bracketList(attrs)
			case "Processor":
				node.kind = "processor"
				node.stores = bracketList(attrs)
			case "Sink":
				node.kind = "sink"
				if t, ok := strings.CutPrefix(attrs, "topic:"); ok {
					if t = strings.TrimSpace(t); !strings.HasPrefix(t, "<") {
						node.topics = []string{t}
					}
				}
			default:
				return nil, bad()
			}
			cur.nodes = append(cur.nodes, node)
		}
	}
	if len(subs) == 0 {
		return nil, fmt.Errorf("console: topology has no sub-topology")
	}
	n := 0
	for _, s := range subs {
		n += len(s.nodes)
	}
	if n > maxTopoNodes {
		return nil, fmt.Errorf("console: topology has %d nodes, more than the %d the console draws", n, maxTopoNodes)
	}
	return subs, nil
}

// bracketList reads "topics: [a, b]" or "stores: []".
func bracketList(attrs string) []string {
	_, list, ok := strings.Cut(attrs, "[")
	if !ok {
		return nil
	}
	list, _, _ = strings.Cut(list, "]")
	return splitList(list)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// layoutTopology lays the description out. topicName resolves a topic
// named in it to its name on the cluster; changelog names a store's
// changelog topic ("" for none).
func layoutTopology(text string, topicName func(string) string, changelog func(string) string) (*TopoGraph, error) {
	subs, err := parseDescription(text)
	if err != nil {
		return nil, err
	}
	g := &TopoGraph{}
	y := topoPad
	for _, ps := range subs {
		sub, width := layoutSub(ps, topicName, changelog, y+topoHeader)
		sub.Y = y
		g.Subs = append(g.Subs, sub)
		g.W = max(g.W, width)
		y += sub.H + topoPad
	}
	g.H = y
	return g, nil
}

// vertex is a node being laid out.
type vertex struct {
	TopoNode
	out   []int // directed edges
	store []int // store edges (processor to store)
	layer int
	pos   float64
}

func layoutSub(ps *parsedSub, topicName, changelog func(string) string, top int) (TopoSub, int) {
	var vs []*vertex
	index := map[string]int{}
	add := func(key string, n TopoNode) int {
		if i, ok := index[key]; ok {
			return i
		}
		n.Label = n.Name
		if r := []rune(n.Name); len(r) > topoLabel {
			n.Label = string(r[:topoLabel-1]) + "…"
		}
		vs = append(vs, &vertex{TopoNode: n})
		index[key] = len(vs) - 1
		return len(vs) - 1
	}
	topic := func(name string) int {
		full := topicName(name)
		n := TopoNode{Kind: "topic", Name: full, Link: "/topics/" + full}
		if strings.HasSuffix(name, "-repartition") {
			n.Role = "repartition"
		}
		return add("topic\x00"+name, n)
	}
	// changelogOf holds each store's changelog topic node, drawn below
	// the store once the stores have their layers.
	changelogOf := map[int]int{}
	for _, n := range ps.nodes {
		add("node\x00"+n.name, TopoNode{Kind: n.kind, Name: n.name})
	}
	for _, n := range ps.nodes {
		me := index["node\x00"+n.name]
		switch n.kind {
		case "source":
			for _, t := range n.topics {
				ti := topic(t)
				vs[ti].out = append(vs[ti].out, me)
			}
		case "sink":
			for _, t := range n.topics {
				vs[me].out = append(vs[me].out, topic(t))
			}
		}
		for _, s := range n.stores {
			st := TopoNode{Kind: "store", Name: s}
			cl := changelog(s)
			if cl != "" {
				st.Link = "/topics/" + cl
			}
			si := add("store\x00"+s, st)
			vs[me].store = append(vs[me].store, si)
			if _, ok := changelogOf[si]; cl != "" && !ok {
				changelogOf[si] = add("changelog\x00"+s, TopoNode{Kind: "topic", Role: "changelog", Name: cl, Link: "/topics/" + cl})
			}
		}
		for _, c := range n.children {
			if ci, ok := index["node\x00"+c]; ok {
				vs[me].out = append(vs[me].out, ci)
			}
		}
	}
	// Layers: the longest path from a root over the directed edges, in
	// topological order (Kahn). A description is acyclic; nodes on a
	// cycle (bad input) keep the layer their other parents gave them.
	indeg := make([]int, len(vs))
	for _, v := range vs {
		for _, o := range v.out {
			indeg[o]++
		}
	}
	var queue []int
	for i := range vs {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, o := range vs[i].out {
			vs[o].layer = max(vs[o].layer, vs[i].layer+1)
			if indeg[o]--; indeg[o] == 0 {
				queue = append(queue, o)
			}
		}
	}
	// A store sits in the deepest layer of the processors using it, its
	// changelog topic in the layer below, joined to it by a directed
	// edge (the store writes it).
	for _, v := range vs {
		for _, s := range v.store {
			vs[s].layer = max(vs[s].layer, v.layer)
		}
	}
	for s, cl := range changelogOf {
		vs[cl].layer = vs[s].layer + 1
		vs[s].out = append(vs[s].out, cl)
	}
	layers := 0
	for _, v := range vs {
		layers = max(layers, v.layer+1)
	}
	rows := make([][]int, layers)
	for i, v := range vs {
		rows[v.layer] = append(rows[v.layer], i)
	}
	// Order each layer by the mean position of its parents (stores after
	// the nodes of their layer, near their processors), two sweeps.
	parents := make([][]int, len(vs))
	for i, v := range vs {
		for _, o := range v.out {
			parents[o] = append(parents[o], i)
		}
		for _, s := range v.store {
			parents[s] = append(parents[s], i)
		}
	}
	for _, r := range rows {
		for j, n := range r {
			vs[n].pos = float64(j)
		}
	}
	for range 2 {
		for l := 1; l < layers; l++ {
			for _, n := range rows[l] {
				if ps := parents[n]; len(ps) > 0 {
					sum := 0.0
					for _, p := range ps {
						sum += vs[p].pos
					}
					vs[n].pos = sum/float64(len(ps)) + storeBias(vs[n])
				}
			}
			slices.SortStableFunc(rows[l], func(a, b int) int { return cmp.Compare(vs[a].pos, vs[b].pos) })
			for j, n := range rows[l] {
				vs[n].pos = float64(j)
			}
		}
	}
	widest := 1
	for _, r := range rows {
		widest = max(widest, len(r))
	}
	for l, r := range rows {
		offset := (widest - len(r)) * topoColW / 2
		for j, n := range r {
			vs[n].X = topoPad + offset + j*topoColW
			vs[n].Y = top + l*topoRowH
		}
	}
	sub := TopoSub{ID: ps.id, Global: ps.global, H: topoHeader + layers*topoRowH}
	for _, v := range vs {
		sub.Nodes = append(sub.Nodes, v.TopoNode)
		for _, o := range v.out {
			w := vs[o]
			sub.Edges = append(sub.Edges, TopoEdge{X1: v.X + topoNodeW/2, Y1: v.Y + topoNodeH, X2: w.X + topoNodeW/2, Y2: w.Y})
		}
		for _, s := range v.store {
			w := vs[s]
			e := TopoEdge{Store: true, X1: v.X + topoNodeW, Y1: v.Y + topoNodeH/2, X2: w.X, Y2: w.Y + topoNodeH/2}
			if w.X < v.X {
				e.X1, e.X2 = v.X, w.X+topoNodeW
			}
			if w.layer != v.layer {
				e.X1, e.Y1, e.X2, e.Y2 = v.X+topoNodeW/2, v.Y+topoNodeH, w.X+topoNodeW/2, w.Y
			}
			sub.Edges = append(sub.Edges, e)
		}
	}
	return sub, 2*topoPad + widest*topoColW
}

// storeBias places a store just after its processor rather than on it.
func storeBias(v *vertex) float64 {
	if v.Kind == "store" {
		return 0.5
	}
	return 0
}
