package web

import (
	"testing"

	"gatehouse/authz"
	"gatehouse/web/login"
)

// TestRoomParticipant: a name is a slug of the login (or display) name and 13 base32 characters
// of a hash of issuer and subject, so no user can take another's name (neither login names nor
// display names are unique); only with web.login.unique_usernames is a clean login name used as it
// is, and a login name shaped like a derived name is derived even then.
func TestRoomParticipant(t *testing.T) {
	tests := []struct {
		name string
		s    *login.Session
		want string
	}{
		{"login name", &login.Session{Subject: "u1", Name: "alice", Username: "alice"}, "alice-mli3fv4ug4vj4"},
		{"login name, unique_usernames", &login.Session{Subject: "u1", Name: "alice", Username: "alice", UsernameUnique: true}, "alice"},
		{"display name only", &login.Session{Subject: "u1", Name: "alice"}, "alice-mli3fv4ug4vj4"},
		{"same display name, other user", &login.Session{Subject: "u2", Name: "alice"}, "alice-jbdmu5q56g47f"},
		{"same subject, other issuer", &login.Session{Issuer: "https://idp.example", Subject: "u1", Name: "alice"}, "alice-6bjzqhcew7755"},
		{"upper-case login name, unique_usernames", &login.Session{Subject: "u1", Name: "Alice", Username: "Alice", UsernameUnique: true}, "alice-mli3fv4ug4vj4"},
		{"untrimmed login name, unique_usernames", &login.Session{Subject: "u9", Name: " alice", Username: " alice", UsernameUnique: true}, "alice-6k7nnu555n24d"},
		{"login name shaped like a derived one", &login.Session{Subject: "u3", Name: "x", Username: "alice-abcdefghijklm", UsernameUnique: true}, "alice-abcdefghijklm-cehaoa4fmpxa2"},
		{"spaces and symbols", &login.Session{Subject: "u1", Name: "Zoë O'Neil / ops*"}, "zo-o-neil-ops-mli3fv4ug4vj4"},
		{"nothing usable", &login.Session{Subject: "u1", Name: "***"}, "guest-mli3fv4ug4vj4"},
		{"email login name", &login.Session{Subject: "u1", Name: "a@b.example", Username: "a@b.example"}, "a-b-example-mli3fv4ug4vj4"},
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
