package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsEndpoint: /metrics on the public listener is guarded by the metrics action (the
// built-in defaults grant it to loopback clients only) and shows the decisions the hooks made,
// with bounded labels, and the Go runtime.
func TestMetricsEndpoint(t *testing.T) {
	public, hooks, _ := startServe(t, "")
	postMediaMTX(t, "http://"+hooks, mtx("203.0.113.7", "", "", "read", "live/cam", "rtsp"))
	postMediaMTX(t, "http://"+hooks, mtx("203.0.113.7", "nobody", "guess", "publish", "live/cam", "rtmp"))
	resp, err := http.Get("http://" + public + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics from loopback: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`gatehouse_decisions_total{action="read",method="internal",protocol="rtsp",result="allow",source="mediamtx"} 1`,
		`gatehouse_decisions_total{action="publish",method="internal",protocol="rtmp",result="unauthenticated",source="mediamtx"} 1`,
		`gatehouse_decisions_total{action="metrics",`,
		`gatehouse_bruteforce_failures_total 1`,
		`gatehouse_decision_duration_seconds_bucket{`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), "live/cam") || strings.Contains(string(body), "nobody") {
		t.Error("/metrics holds a path or user name")
	}
}
