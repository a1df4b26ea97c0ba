package main

import (
	"errors"
	"os"
	"testing"

	"gatehouse/authz/conf"
)

// FuzzParseConfig feeds arbitrary YAML through the real loader (every section's decoder): it
// must return a config or a *conf.Errors-style error, never panic.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../../config.example.yml"); err == nil {
		f.Add(b)
	}
	b, _ := os.ReadFile("../../testdata/e2e.yml")
	f.Add(b)
	f.Add([]byte("auth:\n  methods: [{method: internal, actions: [api]}, jwt, http]\n  http: {address: 'ftp://x'}\n"))
	f.Add([]byte("auth:\n  methods: [{type: http, id: a, config: {address: 'http://x/'}}, {type: http, id: a, config: null}, {type: jwt, method: x}, [1], {config: {}}]\n  jwt: null\n"))
	f.Add([]byte("sfu: {udp_port: -1, ice_servers: [{urls: [x]}]}\nhooks: {forward_auth: {rules: [{prefix: x}]}}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := parseConfig("fuzz.yml", src)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		var ce *conf.Errors
		if err != nil && !errors.As(err, &ce) && cfg != nil {
			t.Fatalf("config returned with error %v", err)
		}
	})
}
