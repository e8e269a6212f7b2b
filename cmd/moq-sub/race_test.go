//go:build race

package main

// raceEnabled: the test binary has the race detector, so the moq-pub it
// builds has it too (and reuses the packages compiled for the tests).
const raceEnabled = true
