package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
)

// One IPv6 client holds a /64: the per-address cap must not give it 2^64 × perIP connections.
func TestPerAddressCapGroupsIPv6(t *testing.T) {
	l := newLimitListener(nil, "public", 10000, 4, nil, slog.New(slog.DiscardHandler))
	admitted := 0
	for i := range 100 {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		if l.admit(a) == "" {
			admitted++
		}
	}
	if admitted > 4 {
		t.Errorf("one /64 opened %d connections past a per-address cap of 4", admitted)
	}
}

// TestPerAddressCapReleasesByGroup: closing connections of one /64 frees its slots.
func TestPerAddressCapReleasesByGroup(t *testing.T) {
	l := newLimitListener(nil, "public", 10000, 2, nil, slog.New(slog.DiscardHandler))
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	if l.admit(a) != "" || l.admit(b) != "" {
		t.Fatal("two connections of one /64 under a cap of 2 were refused")
	}
	if l.admit(netip.MustParseAddr("2001:db8::3")) == "" {
		t.Fatal("a third connection of the /64 was admitted")
	}
	l.release(a)
	if l.admit(netip.MustParseAddr("2001:db8::4")) != "" {
		t.Error("a released slot of the /64 was not reusable")
	}
}
