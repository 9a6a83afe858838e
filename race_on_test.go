//go:build race

package runnel_test

// raceEnabled is set when the tests run under the race detector, which
// slows the stream threads several times over.
const raceEnabled = true
