package stream

import (
	"reflect"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
)

// The client's periods can be set, and Start keeps them. This fails when a
// gortsplib upgrade renames or retypes a private field: its timer would
// then wake every camera again.
func TestQuietClientTimers(t *testing.T) {
	c := &gortsplib.Client{Scheme: "rtsp", Host: "127.0.0.1:1"}
	if !quietClientTimers(c, quietPeriod) {
		t.Fatalf("gortsplib.Client lacks one of %v (time.Duration): find what replaced it", quietTimers)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range quietTimers {
		got := time.Duration(reflect.ValueOf(c).Elem().FieldByName(name).Int())
		if got != quietPeriod {
			t.Errorf("after Start %s is %v, want %v", name, got, quietPeriod)
		}
	}
}

// Only connections that will be batched, and so watched by camd, have the
// client's timers turned down.
func TestQuietsClientTimersOnlyWhenBatched(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want bool
	}{
		{"tcp batched", Options{Transport: TransportTCP, ReadBatch: 100 * time.Millisecond}, batchSupported},
		{"default transport batched", Options{ReadBatch: 100 * time.Millisecond}, batchSupported},
		{"tcp unbatched", Options{Transport: TransportTCP}, false},
		{"udp", Options{Transport: TransportUDP, ReadBatch: 100 * time.Millisecond}, false},
		{"auto", Options{Transport: TransportAuto, ReadBatch: 100 * time.Millisecond}, false},
	} {
		if got := quietsClientTimers(tc.o); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
