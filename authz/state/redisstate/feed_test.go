package redisstate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gatehouse/authz/state/redistest"
)

// after Redis loses a few feed writes (appendfsync everysec after a crash, an async
// Sentinel failover, a restart without persistence), the sequence goes back below what a node
// already read; every record appended until the sequence passes the node's old position again is
// skipped silently: a kick (or key revocation, same Feed) is never delivered.
func TestFeedSequenceRollbackRereads(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := client(t, srv)
	var got []string
	k := FeedKeys{Seq: "t:{f}:seq", Records: "t:{f}:rec", Channel: "t:{f}:ch"}
	f := NewFeed(ctx, rdb, NewHealth(time.Millisecond, nil), k, 1000, time.Hour, time.Hour, func(b []string) { got = append(got, b...) })
	w := NewFeed(ctx, rdb, nil, k, 1000, time.Hour, time.Hour, nil)
	for i := range 5 {
		if err := w.Publish(ctx, fmt.Sprintf("old-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("got %v", got)
	}
	// Redis comes back having lost its last 2 writes (seq 5 -> 3, records 4 and 5 gone).
	rdb.Set(ctx, k.Seq, 3, 0)
	rdb.ZRemRangeByScore(ctx, k.Records, "4", "5")
	// A revocation/kick is written after Redis returned.
	if err := w.Publish(ctx, "revoke-key_after_failover"); err != nil {
		t.Fatal(err)
	}
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if g == "revoke-key_after_failover" {
			return
		}
	}
	t.Fatalf("the record written after the sequence went back was never delivered: got %v", got)
}

// TestFeedGaps: records lost before this node read them (the epoch changed: a flush; or trimmed
// beyond what it read) call OnGap; an ordinary poll, and the first append to a new feed, do not.
func TestFeedGaps(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := client(t, srv)
	for _, tc := range []struct {
		name    string
		lose    func(k FeedKeys)
		wantGap bool
		want    []string // delivered after the loss and one more record
	}{
		{name: "nothing lost", lose: func(FeedKeys) {}, want: []string{"new"}},
		{name: "flushed", lose: func(k FeedKeys) { rdb.Del(ctx, k.Seq, k.Records, k.Seq+":epoch") }, wantGap: true, want: []string{"new"}},
		{name: "trimmed", lose: func(k FeedKeys) { rdb.ZRemRangeByScore(ctx, k.Records, "1", "3") }, wantGap: true, want: []string{"r-3", "r-4", "new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := FeedKeys{Seq: "g:{" + tc.name + "}:seq", Records: "g:{" + tc.name + "}:rec", Channel: "g:{" + tc.name + "}:ch"}
			var got []string
			gaps := 0
			f := NewFeed(ctx, rdb, nil, k, 1000, time.Hour, time.Hour, func(b []string) { got = append(got, b...) })
			f.OnGap(func() { gaps++ })
			w := NewFeed(ctx, rdb, nil, k, 1000, time.Hour, time.Hour, nil)
			if err := w.Publish(ctx, "r-0"); err != nil {
				t.Fatal(err)
			}
			if err := f.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			if gaps != 0 || len(got) != 1 {
				t.Fatalf("first append: got %v and %d gaps, want [r-0] and none", got, gaps)
			}
			got = nil
			for i := 1; i < 5; i++ {
				if err := w.Publish(ctx, fmt.Sprintf("r-%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "nothing lost" {
				if err := f.Poll(ctx); err != nil {
					t.Fatal(err)
				}
				got = nil
			}
			tc.lose(k)
			if err := w.Publish(ctx, "new"); err != nil {
				t.Fatal(err)
			}
			if err := f.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			if (gaps > 0) != tc.wantGap || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, gap %v; want %v, gap %v", got, gaps > 0, tc.want, tc.wantGap)
			}
		})
	}
}
