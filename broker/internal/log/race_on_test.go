//go:build race

package log

// raceSlack scales allocation bounds in tests: the race detector's
// allocator allocates more per call than the plain one.
const raceSlack = 4
