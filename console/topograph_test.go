package console

import (
	"strings"
	"testing"
)

// A description in Kafka Streams' layout (as topology.Describe prints it):
// a repartitioning word count with a global store.
const wordCountDescription = `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [lines])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> words-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: words-repartition-filter (stores: [])
      --> words-repartition-sink
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Sink: words-repartition-sink (topic: words-repartition)
      <-- words-repartition-filter

   Sub-topology: 1
    Source: words-repartition-source (topics: [words-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [counts])
      --> KTABLE-TOSTREAM-0000000004
      <-- words-repartition-source
    Processor: KTABLE-TOSTREAM-0000000004 (stores: [])
      --> KSTREAM-SINK-0000000005, KSTREAM-SINK-0000000006
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000005 (topic: word-counts)
      <-- KTABLE-TOSTREAM-0000000004
    Sink: KSTREAM-SINK-0000000006 (topic: <chosen per record>)
      <-- KTABLE-TOSTREAM-0000000004
   Sub-topology: 2 for global store (will not generate tasks)
    Source: rates-source (topics: [rates])
      --> rates-updater
    Processor: rates-updater (stores: [rates-store])
      --> none
      <-- rates-source
   Co-partitioned topics:
    [lines, other]
`

// TestLayoutTopology: every node of the description is drawn, with each
// logged store's changelog topic below it, topics (marked repartition or
// changelog) and stores link to their pages under their cluster names,
// every directed
// edge goes down (a child below its parent), store edges join a
// processor to its store, and no two nodes overlap.
func TestLayoutTopology(t *testing.T) {
	g, err := layoutTopology(wordCountDescription,
		func(topic string) string {
			if strings.HasSuffix(topic, "-repartition") {
				return "wc-" + topic
			}
			return topic
		},
		func(store string) string {
			if store == "counts" {
				return "wc-counts-changelog"
			}
			return ""
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Subs) != 3 || !g.Subs[2].Global || g.Subs[1].ID != 1 {
		t.Fatalf("sub-topologies: %+v", g.Subs)
	}
	want := map[int]map[string]string{ // sub -> "kind name" -> link
		0: {"topic lines": "/topics/lines", "source KSTREAM-SOURCE-0000000000": "", "processor words-repartition-filter": "",
			"sink words-repartition-sink": "", "topic wc-words-repartition": "/topics/wc-words-repartition"},
		1: {"topic wc-words-repartition": "/topics/wc-words-repartition", "store counts": "/topics/wc-counts-changelog",
			"topic wc-counts-changelog": "/topics/wc-counts-changelog", "topic word-counts": "/topics/word-counts",
			"sink KSTREAM-SINK-0000000006": ""},
		2: {"topic rates": "/topics/rates", "store rates-store": "", "processor rates-updater": ""},
	}
	// What each topic is to the application.
	roles := map[string]string{"topic lines": "", "topic wc-words-repartition": "repartition", "topic wc-counts-changelog": "changelog",
		"topic word-counts": "", "topic rates": ""}
	counts := map[int]int{0: 6, 1: 9, 2: 4}
	for _, s := range g.Subs {
		nodes := map[string]TopoNode{}
		for _, n := range s.Nodes {
			nodes[n.Kind+" "+n.Name] = n
			if n.Y < s.Y+topoHeader || n.Y+topoNodeH > s.Y+s.H || n.X+topoNodeW > g.W {
				t.Errorf("sub %d: node %s at (%d,%d) outside its box y=%d h=%d w=%d", s.ID, n.Name, n.X, n.Y, s.Y, s.H, g.W)
			}
			for _, m := range s.Nodes {
				if m != n && abs(m.X-n.X) < topoNodeW && abs(m.Y-n.Y) < topoNodeH {
					t.Errorf("sub %d: nodes %s and %s overlap", s.ID, n.Name, m.Name)
				}
			}
		}
		if len(s.Nodes) != counts[s.ID] {
			t.Errorf("sub %d: %d nodes, want %d: %v", s.ID, len(s.Nodes), counts[s.ID], nodes)
		}
		for key, link := range want[s.ID] {
			if n, ok := nodes[key]; !ok || n.Link != link {
				t.Errorf("sub %d: node %q: %+v (present %v), want link %q", s.ID, key, n, ok, link)
			}
		}
		for key, n := range nodes {
			if role, ok := roles[key]; n.Kind == "topic" && (!ok || n.Role != role) {
				t.Errorf("sub %d: node %q has role %q, want %q", s.ID, key, n.Role, role)
			}
		}
		// The changelog topic is drawn below its store, which points to
		// it.
		if st, cl := nodes["store counts"], nodes["topic wc-counts-changelog"]; s.ID == 1 && cl.Y <= st.Y {
			t.Errorf("changelog topic at y=%d, not below its store at y=%d", cl.Y, st.Y)
		}
		for _, e := range s.Edges {
			if !e.Store && e.Y2 <= e.Y1 {
				t.Errorf("sub %d: edge (%d,%d)->(%d,%d) does not go down", s.ID, e.X1, e.Y1, e.X2, e.Y2)
			}
		}
	}
	// topic->source->agg->tostream->2 sinks, sink->topic, store->changelog, + 1 store
	if n := len(g.Subs[1].Edges); n != 8 {
		t.Errorf("sub 1: %d edges, want 8", n)
	}
	long := g.Subs[0].Nodes[1].Label
	if len([]rune(long)) > topoLabel {
		t.Errorf("label %q longer than %d", long, topoLabel)
	}
}

func abs(x int) int { return max(x, -x) }

// Bad descriptions are errors, never a panic.
func TestLayoutTopologyErrors(t *testing.T) {
	id := func(s string) string { return s }
	for _, text := range []string{"", "Topologies:\n", "Topologies:\n   Sub-topology: x\n", "Topologies:\n   Sub-topology: 0\n    Widget: w\n",
		"Topologies:\n   Sub-topology: 0\n      --> a\n", "Topologies:\n   Sub-topology: 0\n    Source\n"} {
		if _, err := layoutTopology(text, id, id); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}

// FuzzLayoutTopology: any text lays out or fails, without a panic or a
// hang (a description read from a topic is untrusted).
func FuzzLayoutTopology(f *testing.F) {
	f.Add(wordCountDescription)
	f.Add("Topologies:\n   Sub-topology: 0\n    Source: a (topics: [t])\n      --> a\n")
	id := func(s string) string { return s }
	f.Fuzz(func(t *testing.T, text string) {
		layoutTopology(text, id, id)
	})
}
