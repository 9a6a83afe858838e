package nexmark

import "testing"

// TestEventTopics: every kind of event goes to its own topic, and the
// record Encode makes is on the topic Topic names, so that callers can
// skip the events of topics they do not read before encoding them.
func TestEventTopics(t *testing.T) {
	want := map[Kind]string{KindPerson: TopicPersons, KindAuction: TopicAuctions, KindBid: TopicBids}
	seen := map[Kind]bool{}
	for _, e := range testEvents(t) {
		if got := e.Topic(); got != want[e.Kind] {
			t.Fatalf("a %s's topic is %q, want %q", e.Kind, got, want[e.Kind])
		}
		if r := e.Encode(); r.Topic != e.Topic() {
			t.Fatalf("a %s encodes to topic %q, Topic says %q", e.Kind, r.Topic, e.Topic())
		}
		seen[e.Kind] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("the test events have kinds %v, want all of %v", seen, want)
	}
}
