package sfubench

import "testing"

func TestTargetEndpoint(t *testing.T) {
	mtx, err := ParseTarget("name=mediamtx,whip=http://127.0.0.1:8889/{path}/whip,whep=http://127.0.0.1:8889/{path}/whep,pid=1")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := ParseTarget("name=bb,whip=http://127.0.0.1:8080/api/whip,whep=http://127.0.0.1:8080/api/whep,whip-bearer={key},whep-bearer={key},pid=1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		target              Target
		publish             bool
		wantURL, wantBearer string
	}{
		{"mediamtx whip", mtx, true, "http://127.0.0.1:8889/room/bench/p1/whip", ""},
		{"mediamtx whep", mtx, false, "http://127.0.0.1:8889/room/bench/p1/whep", ""},
		{"broadcast box whip", bb, true, "http://127.0.0.1:8080/api/whip", "room-bench-p1"},
		{"broadcast box whep", bb, false, "http://127.0.0.1:8080/api/whep", "room-bench-p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, b := tt.target.Endpoint("room/bench/p1", tt.publish)
			if u != tt.wantURL || b != tt.wantBearer {
				t.Errorf("got %q %q, want %q %q", u, b, tt.wantURL, tt.wantBearer)
			}
		})
	}
}
