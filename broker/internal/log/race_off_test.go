//go:build !race

package log

// raceSlack scales allocation bounds in tests (see race_on_test.go).
const raceSlack = 1
