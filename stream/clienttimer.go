package stream

import (
	"math"
	"reflect"
	"time"
	"unsafe"

	"github.com/bluenviron/gortsplib/v5"
)

// quietPeriod is the period quietClientTimers gives the client's timers:
// never, in effect (292 years). Not merely long: the client's check would
// then end a camera whose last message to the client (the taken packets
// not counting) was more than ReadTimeout before it.
const quietPeriod = time.Duration(math.MaxInt64)

// quietsClientTimers reports whether Read turns the client's timers down
// for o: when the connection will be batched (TCP, on a system that
// batches, with ReadBatch set), whose reader then ends a silent connection
// itself (ErrReadTimeout). Over UDP the client's read-timeout check also
// decides the switch to TCP and its receiver reports are sent, and an
// automatic transport may end up on either, so those keep them.
func quietsClientTimers(o Options) bool {
	p := protocol(o.Transport)
	return batchSupported && o.ReadBatch > 0 && p != nil && *p == gortsplib.ProtocolTCP && !testLoudClientTimers
}

// testLoudClientTimers, when set (by tests), keeps the client's timers at
// their periods, for the tests of what the client sees of a batched
// connection.
var testLoudClientTimers bool

// quietTimers are the private fields of gortsplib.Client (v5.6.5) that
// quietClientTimers sets, with their defaults:
//   - checkTimeoutPeriod (1 second): how often a playing client checks
//     that data still comes. The batched connection checks that at its
//     ticks instead.
//   - receiverReportPeriod (5 seconds): how often each track makes an RTCP
//     receiver report. Over TCP the client makes it and throws it away
//     (it sends them only over UDP).
var quietTimers = []string{"checkTimeoutPeriod", "receiverReportPeriod"}

// quietClientTimers sets the periods of c's quietTimers to period, before
// c.Start. It reports whether it could set them all; if a gortsplib
// upgrade renamed one, that timer keeps its period, and Read feeds the
// client's check as before (see demuxBatch): nothing changes but the CPU.
//
// Why reach into the client: those timers wake the client's goroutines once
// a second, and once every 5 seconds, per camera, each at the phase of its
// own PLAY, so that 64 cameras wake camd about 77 times a second at instants
// when nothing else runs, where all the reading happens together on shared
// ticks (see batchConn). An idle process woken like that costs a thread
// wake-up, a spin for work and a sleep each time: on the 2-core test
// machine 64 one-second timers alone cost 1 % of a core, and turning
// these two off (with ptsDecoder) cut camd's CPU with 64 simulated cameras
// from 2.81 % to 2.04 % of a core. gortsplib has no option for either;
// TestQuietClientTimers fails if a field goes, so that an upgrade cannot
// bring the wake-ups back unnoticed.
func quietClientTimers(c *gortsplib.Client, period time.Duration) bool {
	ok := true
	v := reflect.ValueOf(c).Elem()
	for _, name := range quietTimers {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Type() != reflect.TypeFor[time.Duration]() {
			ok = false
			continue
		}
		// Start keeps a period that is set (it defaults only a zero
		// one), and only the goroutines Start begins read it.
		*(*time.Duration)(unsafe.Pointer(f.UnsafeAddr())) = period
	}
	return ok
}
