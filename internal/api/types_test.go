package api

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/camd/camd/device"
)

// apiOnly are the keys of the API's camera object that device.View does
// not have: what the API adds.
var apiOnly = map[string]bool{"resolution": true, "relay": true}

// device.View's JSON and CameraJSON's agree: every field of a View (all
// set, so that omitempty drops none) comes out of cameraJSON under the
// same key with the same value, and CameraJSON has no other key but
// apiOnly's. View.TLS, untagged, is compared through stream.CameraTLS's
// tags, which the API uses at the top level.
func TestViewJSONIsCameraJSON(t *testing.T) {
	var v device.View
	fill(reflect.ValueOf(&v).Elem(), 1)
	v.State = device.StateRunning
	view := jsonObject(t, v)
	for k, val := range jsonObject(t, v.TLS) {
		view[k] = val
	}
	cam := jsonObject(t, cameraJSON(v))
	for k, want := range view {
		if got, ok := cam[k]; !ok {
			t.Errorf("device.View has %q, CameraJSON does not", k)
		} else if string(got) != string(want) {
			t.Errorf("%q: device.View %s, CameraJSON %s", k, want, got)
		}
	}
	var extra []string
	for k := range cam {
		if _, ok := view[k]; !ok && !apiOnly[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("CameraJSON has %v, which device.View lacks (or add them to apiOnly)", extra)
	}
	if len(view) < 30 {
		t.Errorf("only %d fields compared: %v", len(view), view)
	}
}

// fill sets every field of v to a non-zero value (seed makes them
// differ).
func fill(v reflect.Value, seed int) int {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, seed, 0, time.UTC)))
			return seed + 1
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				seed = fill(v.Field(i), seed)
			}
		}
	case reflect.String:
		v.SetString("s" + string(rune('a'+seed%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(seed))
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(uint64(seed))
	case reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	}
	return seed + 1
}

func jsonObject(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// SettingsJSON has exactly device.SettingsTable's keys, each converted
// from and back to its own field; read_batch off is 0 in the API.
func TestSettingsJSONIsTheTable(t *testing.T) {
	var s device.Settings
	table := device.SettingsTable()
	for i, st := range table {
		st.Set(&s, time.Duration(i+1)*time.Second)
	}
	j := settingsJSON(s)
	obj := jsonObject(t, j)
	if len(obj) != len(table) {
		t.Errorf("SettingsJSON has %d keys, the table %d: %v", len(obj), len(table), obj)
	}
	for i, st := range table {
		if got := string(obj[st.Key]); got != string(json.RawMessage(jsonNumber(i+1))) {
			t.Errorf("%s: %s in the API, want %d", st.Key, got, i+1)
		}
	}
	if back := j.Durations(); back != s {
		t.Errorf("back from the API: %+v, want %+v", back, s)
	}
	off := device.DefaultSettings()
	off.ReadBatch = -1
	j = settingsJSON(off)
	if j.ReadBatch != 0 || j.Durations().ReadBatch >= 0 {
		t.Errorf("read_batch off: %v in the API, %s back", j.ReadBatch, j.Durations().ReadBatch)
	}
}

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }
