package live_test

import (
	"testing"
	"time"

	"gatehouse/authz/live"
)

// recv returns the next change on c, or fails.
func recv(t *testing.T, c <-chan live.Change) live.Change {
	t.Helper()
	select {
	case ch := <-c:
		return ch
	default:
		t.Fatal("no change")
	}
	return live.Change{}
}

func none(t *testing.T, c <-chan live.Change) {
	t.Helper()
	select {
	case ch := <-c:
		t.Fatalf("unexpected change %+v", ch)
	default:
	}
}

// TestSetRemote: other nodes' streams are listed beside the local ones (a local one wins on its
// path), their appearance and disappearance reach SubscribeAll only, and they are never
// sessions of this node.
func TestSetRemote(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	reg := live.NewRegistry(live.WithClock(func() time.Time { return t0 }))
	local, cancelLocal := reg.Subscribe()
	defer cancelLocal()
	all, cancelAll := reg.SubscribeAll()
	defer cancelAll()
	reg.Record(live.Event{Type: live.Published, Path: "live/here", Source: "sfu", Session: "s1"})
	if c := recv(t, all); !c.Live || c.Stream.Path != "live/here" {
		t.Fatalf("all: got %+v", c)
	}
	recv(t, local)

	reg.SetRemote([]live.Stream{
		{Path: "live/there", Node: "b", Source: "sfu", Identity: "bob"},
		{Path: "live/here", Node: "b", Source: "sfu"}, // hidden by the local publisher
		{Path: "live/nonode", Source: "sfu"},          // no node: skipped
	}, t0)
	if c := recv(t, all); !c.Live || c.Stream.Path != "live/there" || c.Stream.Node != "b" {
		t.Fatalf("all: got %+v, want live live/there on b", c)
	}
	none(t, all)
	none(t, local)

	got := reg.List()
	if len(got) != 2 || got[0].Path != "live/here" || got[0].Node != "" || got[1].Path != "live/there" || got[1].Node != "b" {
		t.Fatalf("List = %+v", got)
	}
	if st, ok := reg.Get("live/there"); !ok || st.Node != "b" || st.Identity != "bob" {
		t.Fatalf("Get(live/there) = %+v, %v", st, ok)
	}
	if l := reg.Local(); len(l) != 1 || l[0].Path != "live/here" {
		t.Fatalf("Local = %+v", l)
	}
	for _, s := range reg.Sessions() {
		if s.Path == "live/there" {
			t.Fatalf("Sessions lists another node's stream: %+v", s)
		}
	}

	// The local publisher ends: the other node's stream of the path shows.
	reg.Record(live.Event{Type: live.Unpublished, Path: "live/here", Source: "sfu", Session: "s1"})
	if c := recv(t, all); c.Live || c.Stream.Path != "live/here" || c.Stream.Node != "" {
		t.Fatalf("all: got %+v, want local offline", c)
	}
	if c := recv(t, all); !c.Live || c.Stream.Path != "live/here" || c.Stream.Node != "b" {
		t.Fatalf("all: got %+v, want b's live/here", c)
	}
	recv(t, local)
	none(t, local)

	// Same list again: nothing; empty list: both go offline.
	reg.SetRemote([]live.Stream{{Path: "live/there", Node: "b", Source: "sfu"}, {Path: "live/here", Node: "b", Source: "sfu"}}, t0)
	none(t, all)
	reg.SetRemote(nil, t0)
	offline := map[string]bool{}
	for range 2 {
		c := recv(t, all)
		if c.Live || c.Reason != live.ReasonUnpublished {
			t.Fatalf("all: got %+v, want offline", c)
		}
		offline[c.Stream.Path] = true
	}
	if !offline["live/here"] || !offline["live/there"] {
		t.Fatalf("offline: %v", offline)
	}
	none(t, local)
	if l := reg.List(); len(l) != 0 {
		t.Fatalf("List = %+v", l)
	}
}
