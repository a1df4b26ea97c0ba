package nginxrtmp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gatehouse/authz"
)

// TestUpdateSurvivesOthersBruteForceBans: alice publishes with her password; then 50 wrong
// passwords for the name alice from elsewhere ban the name, and a guesser behind her NAT bans her
// address. Her stream's on_update keeps it (the failures were not hers) while a new publish is
// refused; an operator's ban of alice ends it at the next on_update.
func TestUpdateSurvivesOthersBruteForceBans(t *testing.T) {
	now := time.Date(2026, 5, 12, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	be := authz.BackendFunc(func(_ context.Context, r *authz.Request) (authz.Decision, error) {
		if r.User == "alice" && r.Pass == "right" {
			return authz.Allowing("alice", time.Time{}), nil
		}
		return authz.Denying(authz.Unauthenticated, authz.ReasonBadCredentials, "no"), nil
	})
	eng := authz.NewEngine(authz.NewChain(authz.Method{Name: "users", Backend: be}).
		WithPolicy(authz.Policy{BruteForce: authz.DefaultBruteForce()}), nil, authz.WithClock(clock))
	h := New(Config{Now: clock}, eng, newRecorder(), nil)
	const home = "198.51.100.20"
	call := func(addr, clientID, call, user, pass string) int {
		return hookPost(h, "app=live&addr="+addr+"&clientid="+clientID+"&call="+call+"&name=alice&user="+user+"&pass="+pass).Code
	}
	if got := call(home, "1", "publish", "alice", "right"); got != 200 {
		t.Fatalf("publish: got %d, want 200", got)
	}
	for i := range 50 {
		call(fmt.Sprintf("203.0.113.%d", i+1), fmt.Sprint(100+i), "publish", "alice", fmt.Sprint("guess", i)) // distinct: a repeat counts once
	}
	for i := range 10 {
		call(home, fmt.Sprint(200+i), "publish", "mallory", fmt.Sprint("guess", i))
	}
	if got := call(home, "2", "publish", "alice", "right"); got != 403 {
		t.Fatalf("a new publish after the bans: got %d, want 403 (banned)", got)
	}
	if got := call(home, "1", "update_publish", "alice", "right"); got != 200 {
		t.Errorf("on_update of alice's running stream: got %d, want 200 (others' failures do not end it)", got)
	}
	if err := eng.Ban("", "alice", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := call(home, "1", "update_publish", "alice", "right"); got != 403 {
		t.Errorf("on_update after an operator's ban: got %d, want 403", got)
	}
}
