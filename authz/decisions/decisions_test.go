package decisions

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatehouse/authz"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)

func obs(at time.Time, o authz.Outcome, path string) authz.Observation {
	return authz.Observation{Time: at, Action: authz.ActionPublish, Path: path, Outcome: o, Reason: "r", IP: netip.MustParseAddr("192.0.2.1")}
}

// TestRecentIsBounded: each ring keeps its last size entries, newest first, so a flood of allows
// never pushes out a denial.
func TestRecentIsBounded(t *testing.T) {
	r := New(3, WithClock(func() time.Time { return t0 }))
	for i := range 10 {
		r.Observe(obs(t0, authz.Forbidden, fmt.Sprintf("d%d", i)))
	}
	for i := range 1000 {
		r.Observe(obs(t0, authz.Allow, fmt.Sprintf("a%d", i)))
	}
	var got []string
	for _, e := range r.Snapshot().Decisions {
		got = append(got, e.Path)
	}
	if want := "d9,d8,d7,a999,a998,a997"; strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// TestSnapshotDenialsFirst: denials (newest first) come before allows, whatever the order they
// were made in; a partly filled ring lists only what it holds.
func TestSnapshotDenialsFirst(t *testing.T) {
	r := New(10)
	for i, o := range []authz.Outcome{authz.Allow, authz.Unauthenticated, authz.Allow, authz.Forbidden, authz.Allow} {
		r.Observe(obs(t0.Add(time.Duration(i)*time.Second), o, fmt.Sprint(i)))
	}
	var got []string
	for _, e := range r.Snapshot().Decisions {
		got = append(got, e.Path+":"+e.Result)
	}
	if want := "3:forbidden,1:unauthenticated,4:allow,2:allow,0:allow"; strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// TestMinutes: per-minute counts for the last 60 minutes, oldest first, ending at the current
// minute; a slot reused an hour later starts from zero, and an observation older than its slot
// is not counted.
func TestMinutes(t *testing.T) {
	now := t0
	r := New(5, WithClock(func() time.Time { return now }))
	r.Observe(obs(t0.Add(-61*time.Minute), authz.Allow, "")) // slot of -1 min, an hour earlier
	r.Observe(obs(t0.Add(-time.Minute), authz.Allow, ""))
	r.Observe(obs(t0.Add(-time.Minute), authz.Forbidden, ""))
	r.Observe(obs(t0.Add(-61*time.Minute), authz.Allow, "")) // late: the slot is newer now
	r.Observe(obs(t0, authz.Forbidden, ""))
	r.Observe(obs(t0, authz.Forbidden, ""))
	m := r.Snapshot().Minutes
	if len(m) != Minutes {
		t.Fatalf("got %d minutes, want %d", len(m), Minutes)
	}
	last, prev := m[Minutes-1], m[Minutes-2]
	if !last.Start.Equal(t0.Truncate(time.Minute)) || last.Allowed != 0 || last.Denied != 2 {
		t.Errorf("current minute: got %+v", last)
	}
	if prev.Allowed != 1 || prev.Denied != 1 {
		t.Errorf("previous minute: got %+v, want 1 allowed 1 denied", prev)
	}
	now = t0.Add(59 * time.Minute) // t0's minute is the oldest in the window, -1 min has left it
	m = r.Snapshot().Minutes
	if m[0].Denied != 2 || m[Minutes-1].Denied != 0 {
		t.Errorf("an hour on: oldest %+v, newest %+v", m[0], m[Minutes-1])
	}
}

// keyChain allows api to the named admin (and anonymously to anyone else, like the built-in
// loopback grant) and denies a publish on a stream key, renamed to its public path.
func keyChain(secret string) *authz.Chain {
	return authz.NewChain(authz.Method{Name: "test", Backend: authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		switch {
		case r.Action == authz.ActionAPI && r.User == "admin" && r.Pass == "pw":
			return authz.Allowing("admin", time.Time{}), nil
		case r.Action == authz.ActionAPI:
			return authz.Allowing("", time.Time{}), nil
		case r.Path == "live/"+secret:
			d := authz.Denying(authz.Unauthenticated, "key_revoked", "stream key revoked")
			d.Rename = "live/alice"
			return d, nil
		}
		return authz.Allowing("bob", time.Time{}), nil
	})})
}

// TestAPI: a named api caller gets the decisions, denials first, with the public path where a
// stream key was presented and never the key; an anonymous api grant is refused; the chart is
// served as SVG.
func TestAPI(t *testing.T) {
	const secret = "Zk3vQ9wJ2mXb7Lr4Tn8Pc5Hd"
	rec := New(10)
	eng := authz.NewEngine(keyChain(secret), nil, authz.WithObserver(rec))
	eng.Authorize(context.Background(), &authz.Request{Action: authz.ActionRead, Path: "live/cam", Source: "sfu"})
	eng.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/" + secret, Protocol: "rtmp", Source: "nginx-rtmp", User: "x", Pass: "y"})
	h := APIHandler(rec, eng)

	get := func(path string, named bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if named {
			r.SetBasicAuth("admin", "pw")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	t.Run("anonymous api grant refused", func(t *testing.T) {
		for _, p := range []string{"/api/v1/decisions", "/api/v1/decisions/chart.svg"} {
			if w := get(p, false); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "live/") {
				t.Errorf("%s: got %d %s, want 401 and no data", p, w.Code, w.Body)
			}
		}
	})
	t.Run("decisions, denial first, no key", func(t *testing.T) {
		w := get("/api/v1/decisions", true)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q", w.Code, w.Header().Get("Content-Type"))
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Fatalf("the answer holds the stream key: %s", w.Body)
		}
		var s Snapshot
		if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Decisions) < 2 {
			t.Fatalf("got %d decisions", len(s.Decisions))
		}
		d := s.Decisions[0]
		if d.Path != "live/alice" || d.Result != "unauthenticated" || d.Reason != "key_revoked" || d.Source != "nginx-rtmp" || d.Method != "test" {
			t.Errorf("first decision: got %+v, want the denied key publish under live/alice", d)
		}
		if s.Decisions[1].Result != "allow" {
			t.Errorf("second decision: got %+v, want an allow", s.Decisions[1])
		}
		if len(s.Minutes) != Minutes || s.Minutes[Minutes-1].Denied != 1 {
			t.Errorf("minutes: got %d, current %+v", len(s.Minutes), s.Minutes[len(s.Minutes)-1])
		}
	})
	t.Run("chart", func(t *testing.T) {
		w := get("/api/v1/decisions/chart.svg", true)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("got %d %q", w.Code, w.Header().Get("Content-Type"))
		}
		if err := xml.Unmarshal(w.Body.Bytes(), new(any)); err != nil {
			t.Errorf("not XML: %v", err)
		}
		if !strings.Contains(w.Body.String(), `class="denied"`) {
			t.Errorf("no denied bar: %s", w.Body)
		}
	})
}

// TestChart: one bar per minute with a decision, the denied stacked on the allowed, totals in
// the legend, well-formed XML; an empty hour says so.
func TestChart(t *testing.T) {
	m := make([]Minute, Minutes)
	for i := range m {
		m[i].Start = t0.Add(time.Duration(i-Minutes+1) * time.Minute)
	}
	m[10].Allowed, m[10].Denied = 7, 3
	m[59].Denied = 1
	for _, tc := range []struct {
		name                  string
		minutes               []Minute
		allowed, denied       int
		want                  []string
		wantNoDecisionsNotice bool
	}{
		{"with decisions", m, 1, 2, []string{"allowed 7", "denied 4", ">10<", "60 min ago", "now"}, false},
		{"empty hour", make([]Minute, Minutes), 0, 0, []string{"allowed 0", "denied 0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := Chart(tc.minutes)
			var doc struct {
				Rects []struct {
					Class  string `xml:"class,attr"`
					Y      string `xml:"y,attr"`
					Height string `xml:"height,attr"`
				} `xml:"rect"`
			}
			if err := xml.Unmarshal(svg, &doc); err != nil {
				t.Fatalf("not XML: %v\n%s", err, svg)
			}
			var a, d int
			for _, r := range doc.Rects {
				switch r.Class {
				case "allowed":
					a++
				case "denied":
					d++
				}
			}
			if a != tc.allowed || d != tc.denied {
				t.Errorf("bars: got %d allowed %d denied, want %d %d", a, d, tc.allowed, tc.denied)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(svg), w) {
					t.Errorf("chart lacks %q", w)
				}
			}
			if got := strings.Contains(string(svg), "No decisions in the last hour"); got != tc.wantNoDecisionsNotice {
				t.Errorf("empty notice: got %v, want %v", got, tc.wantNoDecisionsNotice)
			}
		})
	}
}

// TestObserveAllocs: recording a decision allocates nothing (its address is written out when a
// snapshot shows it), and the snapshot shows the address as before.
func TestObserveAllocs(t *testing.T) {
	r := New(10)
	o := obs(t0, authz.Allow, "live/cam")
	if n := testing.AllocsPerRun(100, func() { r.Observe(o) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
	for _, ip := range []string{"192.0.2.1", "2001:db8::1", "fe80::1%eth0", "::ffff:192.0.2.1", ""} {
		o.IP = netip.Addr{}
		if ip != "" {
			o.IP = netip.MustParseAddr(ip)
		}
		r.Observe(o)
		if got := r.Snapshot().Decisions[0].IP; got != ip {
			t.Errorf("snapshot IP = %q, want %q", got, ip)
		}
	}
}
