package notify_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/authz/live"
	"gatehouse/authz/notify"
)

// BenchmarkRecord measures the adapters' hot path: every op is a publish and an unpublish, i.e.
// two real transitions. Compare "notifier" with "registry only" to see what a subscribed
// notifier (delivering to two loopback webhooks) costs Record.
func BenchmarkRecord(b *testing.B) {
	pub := live.Event{Type: live.Published, Path: "live/alice", Source: "ome", Identity: "alice"}
	unpub := live.Event{Type: live.Unpublished, Path: "live/alice", Source: "ome"}

	b.Run("registry only", func(b *testing.B) {
		reg := live.NewRegistry()
		b.ReportAllocs()
		for b.Loop() {
			reg.Record(pub)
			reg.Record(unpub)
		}
	})
	b.Run("full subscriber", func(b *testing.B) { // nobody drains: every change takes the drop path
		reg := live.NewRegistry(live.WithSubscriberBuffer(1))
		_, unsubscribe := reg.Subscribe()
		defer unsubscribe()
		b.ReportAllocs()
		for b.Loop() {
			reg.Record(pub)
			reg.Record(unpub)
		}
	})
	b.Run("drained subscriber", func(b *testing.B) { // a consumer that does no work
		reg := live.NewRegistry()
		changes, unsubscribe := reg.Subscribe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range changes {
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			reg.Record(pub)
			reg.Record(unpub)
		}
		b.StopTimer()
		unsubscribe()
		<-done
	})
	b.Run("notifier", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		n, err := notify.New(notify.Config{Webhooks: []notify.Webhook{
			{Name: "discord", URL: srv.URL, Format: notify.FormatDiscord},
			{Name: "json", URL: srv.URL, Format: notify.FormatJSON, Secret: "k"},
		}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		reg := live.NewRegistry()
		changes, unsubscribe := reg.Subscribe()
		defer unsubscribe()
		done := make(chan error, 1)
		go func() { done <- n.Run(b.Context(), changes) }()
		defer func() { n.Close(); <-done }()
		b.ReportAllocs()
		for b.Loop() {
			reg.Record(pub)
			reg.Record(unpub)
		}
		b.StopTimer()
		var delivered, dropped uint64
		for _, s := range n.Stats() {
			delivered += s.Delivered
			dropped += s.Dropped
		}
		b.ReportMetric(float64(reg.Dropped()), "sub-dropped")
		b.ReportMetric(float64(delivered), "delivered")
		b.ReportMetric(float64(dropped), "queue-dropped")
	})
}
