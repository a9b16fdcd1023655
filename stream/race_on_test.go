//go:build race

package stream

// raceDetector tells tests that the race detector is on: sync.Pool then
// drops what it is given at random, so allocation counts mean nothing.
const raceDetector = true
