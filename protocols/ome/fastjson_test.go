package ome

import (
	"encoding/json"
	"testing"
)

// TestDecodeFast: the fast path's reading of OME's body, including the documents it must leave to
// encoding/json, and duplicate keys (the last wins, nested objects merge, as encoding/json does).
func TestDecodeFast(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool // the fast path reads it itself
	}{
		{"bench body", `{"client":{"address":"127.0.0.1","port":51234},"request":{"direction":"incoming","protocol":"RTMP","status":"opening","time":"2026-05-12T13:45:00.123+00:00","url":"rtmp://127.0.0.1:1935/live/cam?user=u&pass=p"}}`, true},
		{"duplicate url, last wins", `{"request":{"direction":"incoming","status":"opening","url":"rtmp://h/a/b","url":"rtmp://h/c/d"}}`, true},
		{"duplicate request objects merge", `{"request":{"url":"rtmp://h/a/b","status":"opening"},"request":{"direction":"outgoing"}}`, true},
		{"null keeps the earlier value", `{"request":{"url":"rtmp://h/a/b","url":null,"status":"opening","direction":"incoming"}}`, true},
		{"unknown fields ignored", `{"x":1,"y":null,"z":{"a":"b"},"client":{"port":0,"w":"v"},"request":{"direction":"incoming","status":"opening","url":"u"}}`, true},
		{"case variant of a known key", `{"request":{"direction":"incoming","status":"opening","url":"a","URL":"b"}}`, false},
		{"case variant of an object key", `{"Request":{"direction":"incoming","status":"opening","url":"a"}}`, false},
		{"escaped string", `{"request":{"direction":"incoming","status":"opening","url":"a\/b"}}`, false},
		{"port in a string", `{"client":{"port":"1935"},"request":{"direction":"incoming","status":"opening","url":"a"}}`, false},
		{"port with a fraction", `{"client":{"port":1.5},"request":{"direction":"incoming","status":"opening","url":"a"}}`, false},
		{"url not a string", `{"request":{"direction":"incoming","status":"opening","url":5}}`, false},
		{"client not an object", `{"client":"x","request":{"direction":"incoming","status":"opening","url":"a"}}`, false},
		{"trailing data", `{"request":{"direction":"incoming","status":"opening","url":"a"}}x`, false},
		{"invalid UTF-8", "{\"request\":{\"direction\":\"incoming\",\"status\":\"opening\",\"url\":\"\xff\"}}", false},
		{"boolean", `{"b":true,"request":{"direction":"incoming","status":"opening","url":"a"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fast Admission
			if got := fast.decodeFast([]byte(tt.body)); got != tt.fast {
				t.Fatalf("decodeFast = %v, want %v", got, tt.fast)
			}
			if !tt.fast {
				return
			}
			var slow Admission
			if err := json.Unmarshal([]byte(tt.body), &slow); err != nil {
				t.Fatal(err)
			}
			if fast != slow {
				t.Fatalf("got %+v, want %+v (encoding/json)", fast, slow)
			}
		})
	}
}

// FuzzDecodeFastMatchesJSON: whenever the fast path accepts a body, encoding/json accepts it too
// and yields the same admission.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	f.Add([]byte(`{"client":{"address":"127.0.0.1","port":51234,"real_ip":"10.0.0.1","user_agent":"x"},"request":{"direction":"incoming","protocol":"RTMP","status":"opening","time":"2026-05-12T13:45:00.123+00:00","url":"rtmp://127.0.0.1:1935/live/cam?user=u&pass=p","new_url":"rtmp://h/a/b"}}`))
	f.Add([]byte(`{"request":{"url":"a","url":null,"URL":"b"},"request":{"status":"closing"},"client":null}`))
	f.Add([]byte(` {"x":{"y":0},"client":{"port":0}} `))
	f.Add([]byte(`{"":{"client":"x"},"client":{"Port":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Admission
		if !fast.decodeFast(b) {
			return
		}
		var slow Admission
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, b)
		}
		if fast != slow {
			t.Fatalf("fast %+v != slow %+v for %q", fast, slow, b)
		}
	})
}
