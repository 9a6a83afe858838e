package main

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Click is one page view: who, which page, and when (Unix ms, also the
// record's timestamp).
type Click struct {
	User, Page string
	Time       int64
}

var (
	users = []string{"ada", "alan", "grace", "edsger", "barbara"}
	pages = []string{"/", "/search", "/product/1", "/product/2", "/product/3", "/cart", "/checkout", "/help"}
)

// Generate makes about half an hour of clicks from start: each user browses in a few
// bursts of clicks 1 to 20 s apart, with pauses of 2 to 10 minutes between
// bursts. The clicks come in time order, as a website would log them.
func Generate(seed uint64, start time.Time) []Click {
	rng := rand.New(rand.NewPCG(seed, seed))
	var clicks []Click
	for _, u := range users {
		t := start.Add(time.Duration(rng.IntN(300)) * time.Second)
		for range 2 + rng.IntN(4) {
			for range 1 + rng.IntN(12) {
				clicks = append(clicks, Click{User: u, Page: pages[rng.IntN(len(pages))], Time: t.UnixMilli()})
				t = t.Add(time.Duration(1+rng.IntN(20)) * time.Second)
			}
			t = t.Add(time.Duration(2+rng.IntN(9)) * time.Minute)
		}
	}
	slices.SortStableFunc(clicks, func(a, b Click) int { return int(a.Time - b.Time) })
	return clicks
}
