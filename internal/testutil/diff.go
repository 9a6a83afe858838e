package testutil

import (
	"fmt"
	"slices"
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
