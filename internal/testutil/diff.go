package testutil

import (
	"fmt"
	"slices"
	"strings"
)

// MapDiff lists how got differs from want, at most ten differences, for a
// test's failure message.
func MapDiff[K comparable, V comparable](got, want map[K]V) string {
	var out []string
	for k, v := range got {
		if w, ok := want[k]; !ok || w != v {
			out = append(out, fmt.Sprintf("%v: got %v want %v", k, v, w))
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%v: missing, want %v", k, w))
		}
	}
	slices.Sort(out)
	n := len(out)
	if n > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", n-10))
	}
	return fmt.Sprint(n, " differences: ", out)
}

// FirstDiff says where got first differs from want, with got's
// neighbourhood there, or that only their lengths differ.
func FirstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d got %q want %q (around %s)", i, got[i], want[i], strings.Join(got[max(0, i-2):min(len(got), i+3)], ","))
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
