package hookio

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzWalkJSONValid: WalkJSON accepts only valid JSON objects, and reports every member it reads
// with a value encoding/json reads the same way.
func FuzzWalkJSONValid(f *testing.F) {
	f.Add([]byte(`{"a":"b","c":null,"d":12,"e":{"f":"g","h":0}}`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"a":{"b":{"c":1}}}`))
	f.Add([]byte(` { } `))
	f.Fuzz(func(t *testing.T, b []byte) {
		ok := WalkJSON(b, func(parent, key, val []byte, kind FastKind) bool {
			var want string
			switch kind {
			case FastString:
				if err := json.Unmarshal(append(append([]byte{'"'}, val...), '"'), &want); err != nil || want != string(val) {
					t.Fatalf("string %q read as %q (%v)", val, want, err)
				}
			case FastUint:
				var n json.Number
				if err := json.Unmarshal(val, &n); err != nil || string(n) != string(val) {
					t.Fatalf("number %q read as %q (%v)", val, n, err)
				}
			}
			return true
		})
		if ok && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		// Numbers as json.Number: a valid object may hold an integer beyond float64 (the fuzzer
		// found {"":888…880}), which map[string]any's float64 refuses while the JSON is fine.
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if ok && dec.Decode(&m) != nil {
			t.Fatalf("accepted a non-object %q", b)
		}
	})
}

func TestWalkJSON(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{}`, true},
		{`{"a":"b","c":{"d":1}}`, true},
		{`{"a":{"b":{"c":1}}}`, false}, // deeper than one level
		{`{"a":-1}`, false},
		{`{"a":01}`, false},
		{`{"a":1e3}`, false},
		{`{"a":true}`, false},
		{`{"a":[]}`, false},
		{`{"a":"b",}`, false},
		{`{"a":"b"} {}`, false},
		{`[]`, false},
		{`{"a":nul}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			if got := WalkJSON([]byte(tt.body), func(_, _, _ []byte, _ FastKind) bool { return true }); got != tt.want {
				t.Fatalf("WalkJSON(%s) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}

// BenchmarkWalkJSON walks the bodies of the MediaMTX, OME and SRS hook benchmarks (cmd/hookbench).
func BenchmarkWalkJSON(b *testing.B) {
	bodies := [][]byte{
		[]byte(`{"ip":"127.0.0.1","user":"testuser","password":"testpass","token":"testpass","action":"publish","path":"live/cam","protocol":"rtmp","id":null,"query":"","userAgent":"bench"}`),
		[]byte(`{"client":{"address":"127.0.0.1","port":51234},"request":{"direction":"incoming","protocol":"RTMP","status":"opening","time":"2026-05-12T13:45:00.123+00:00","url":"rtmp://127.0.0.1:1935/live/cam?user=testuser&pass=testpass"}}`),
		[]byte(`{"server_id":"vid-0xk989d","service_id":"9ej8d2b6","action":"on_publish","client_id":"341w361a","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1/live","stream":"cam","param":"?user=testuser&pass=testpass","stream_url":"/live/cam","stream_id":"vid-6r1z1i3"}`),
	}
	for _, body := range bodies {
		b.Run("", func(b *testing.B) {
			for b.Loop() {
				WalkJSON(body, func(_, _, _ []byte, _ FastKind) bool { return true })
			}
		})
	}
}
