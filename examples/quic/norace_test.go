//go:build !race

package main

// raceEnabled reports whether the race detector is on (see TestRun).
const raceEnabled = false
