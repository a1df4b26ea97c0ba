package web

import (
	"testing"

	"gatehouse/web/login"
)

// TestParticipantSameLoginNameOtherSubject (from an outside review): preferred_username is not
// unique (OIDC Core §5.1: "The RP MUST NOT rely upon this value being unique"); Dex with a GitHub
// and an LDAP connector gives both users "alice" with different subjects. They must not get the
// same participant name, and so the same publish path; nor may a login name that differs only by
// surrounding spaces (" alice", which the login no longer trims).
func TestParticipantSameLoginNameOtherSubject(t *testing.T) {
	a := Participant(&login.Session{Subject: "CgVhbGljZRIGZ2l0aHVi", Name: "alice", Username: "alice"})
	b := Participant(&login.Session{Subject: "CgVhbGljZRIEbGRhcA", Name: "Alice Mallory", Username: "alice"})
	if a == b {
		t.Errorf("two subjects, one participant name %q: either can publish on the other's room/<name>/%s", a, a)
	}
	for _, unique := range []bool{false, true} {
		x := Participant(&login.Session{Subject: "u1", Name: "alice", Username: "alice", UsernameUnique: unique})
		y := Participant(&login.Session{Subject: "u9", Name: " alice", Username: " alice", UsernameUnique: unique})
		if x == y {
			t.Errorf("unique_usernames %v: \"alice\" and \" alice\" (two subjects) share %q", unique, x)
		}
	}
}
