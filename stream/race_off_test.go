//go:build !race

package stream

// raceDetector: see race_on_test.go.
const raceDetector = false
