package main

import (
	"slices"
	"testing"
)

// -runnel-bin takes one binary, or named builds measured in turn, and
// refuses what is neither.
func TestRunnelBuilds(t *testing.T) {
	one, err := runnelBuilds("/tmp/rb")
	if err != nil || len(one) != 1 || one[0].bin != "/tmp/rb" || one[0].name() != "runnel" {
		t.Fatalf("one binary: %+v %v", one, err)
	}
	two, err := runnelBuilds("old=/tmp/a, new=/tmp/b")
	if err != nil || len(two) != 2 || two[0].name() != "runnel-old" || two[1].bin != "/tmp/b" {
		t.Fatalf("two builds: %+v %v", two, err)
	}
	for _, bad := range []string{"old=/a,old=/b", "old=,new=/b", "=/a", "old=/a,/b"} {
		if _, err := runnelBuilds(bad); err == nil {
			t.Errorf("-runnel-bin %q accepted", bad)
		}
	}
}

// Builds take turns going first; any other peer keeps the given order.
func TestRoundOrder(t *testing.T) {
	builds, _ := runnelBuilds("a=/a,b=/b,c=/c")
	peers := []peer{builds[0], builds[1], builds[2]}
	names := func(ps []peer) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.name())
		}
		return out
	}
	for round, want := range [][]string{
		{"runnel-a", "runnel-b", "runnel-c"},
		{"runnel-b", "runnel-c", "runnel-a"},
		{"runnel-c", "runnel-a", "runnel-b"},
		{"runnel-a", "runnel-b", "runnel-c"},
	} {
		if got := names(roundOrder(peers, round+1)); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", round+1, got, want)
		}
	}
	mixed := []peer{&runnelPeer{}, &kfakePeer{}}
	if got := names(roundOrder(mixed, 2)); !slices.Equal(got, []string{"runnel", "kfake"}) {
		t.Errorf("runnel and kfake in round 2: %v", got)
	}
}
