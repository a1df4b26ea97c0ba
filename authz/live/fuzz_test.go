package live

import (
	"fmt"
	"testing"
	"time"
)

// FuzzRecord replays arbitrary event sequences (each event is 3 bytes: type, path+source,
// session+time step, with sweeps mixed in) and checks the invariants callers rely on: per path,
// changes alternate live/offline starting with live, and List agrees with the last change.
func FuzzRecord(f *testing.F) {
	f.Add([]byte{1, 0, 0, 2, 0, 0})
	f.Add([]byte{2, 0, 0, 1, 0, 0, 1, 0, 1, 2, 0, 0})
	f.Add([]byte{1, 0, 0, 1, 0, 1, 2, 0, 0, 3, 1, 2, 6, 0, 0xf0, 5, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		now := t0
		r := NewRegistry(WithSubscriberBuffer(len(data) + 1))
		ch, cancel := r.Subscribe()
		defer cancel()
		for i := 0; i+2 < len(data); i += 3 {
			typ, ps, st := data[i], data[i+1], data[i+2]
			now = now.Add(time.Duration(st>>4) * 7 * time.Minute)
			if typ%7 == 6 {
				r.Sweep(now)
				continue
			}
			r.Record(Event{
				Type:    EventType(typ % 7),
				Path:    fmt.Sprintf("p%d", ps%4),
				Source:  []string{"ome", "srs", "sfu", "nginx-rtmp"}[(ps>>2)%4],
				Session: []string{"", "a", "b", "c"}[st%4],
				Time:    now,
			})
		}
		live := map[string]bool{}
		for range len(ch) {
			c := <-ch
			if c.Live == live[c.Stream.Path] {
				t.Fatalf("change %s repeats the path's state", changeString(c))
			}
			live[c.Stream.Path] = c.Live
		}
		for _, s := range r.List() {
			if !live[s.Path] {
				t.Errorf("List has %s, but its last change was not live", s.Path)
			}
			if s.Viewers < 0 {
				t.Errorf("%s has %d viewers", s.Path, s.Viewers)
			}
			delete(live, s.Path)
		}
		for p, l := range live {
			if l {
				t.Errorf("last change of %s was live, but List lacks it", p)
			}
		}
	})
}
