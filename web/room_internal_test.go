package web

import (
	"testing"

	"gatehouse/authz"
	"gatehouse/web/login"
)

// TestRoomParticipant: a clean login name is used as it is; everything else gets a slug and a
// hash of the subject, so no user can take another's name (display names are not unique, and a
// login name shaped like a derived name is derived itself).
func TestRoomParticipant(t *testing.T) {
	tests := []struct {
		name string
		s    *login.Session
		want string
	}{
		{"login name", &login.Session{Subject: "u1", Name: "alice", Username: "alice"}, "alice"},
		{"display name only", &login.Session{Subject: "u1", Name: "alice"}, "alice-bb82030d"},
		{"same display name, other user", &login.Session{Subject: "u2", Name: "alice"}, "alice-6ca202c8"},
		{"upper-case login name", &login.Session{Subject: "u1", Name: "Alice", Username: "Alice"}, "alice-bb82030d"},
		{"login name shaped like a derived one", &login.Session{Subject: "u3", Name: "alice-9d61b14a", Username: "alice-9d61b14a"}, "alice-9d61b14a-011e39ef"},
		{"spaces and symbols", &login.Session{Subject: "u1", Name: "Zoë O'Neil / ops*"}, "zo-o-neil-ops-bb82030d"},
		{"nothing usable", &login.Session{Subject: "u1", Name: "***"}, "guest-bb82030d"},
		{"email login name", &login.Session{Subject: "u1", Name: "a@b.example", Username: "a@b.example"}, "a-b-example-bb82030d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Participant(tt.s)
			if got != tt.want {
				t.Errorf("Participant: got %q, want %q", got, tt.want)
			}
			if err := authz.CheckPath(RoomPrefix + "x/" + got); err != nil {
				t.Errorf("not a path segment: %v", err)
			}
		})
	}
}
