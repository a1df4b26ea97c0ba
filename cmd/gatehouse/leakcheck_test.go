package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

// leakCheck is the package's secret registry: tests register every secret they hand a binary
// (passwords, tokens, stream keys, HMAC and cookie secrets, cookies), startBinary registers the
// log of every binary it starts, and TestMain searches every captured log for every secret after
// the run. A registry of the test binary's own run, so a package-level value (test code only).
type leakCheck struct {
	mu       sync.Mutex
	secrets  map[string]string // secret -> label (the label is what a failure prints)
	logs     []logSource
	required bool // a test that depends on the check ran: it must not pass vacuously
}

// logSource is one captured log: a binary started by a test, or a planted text in the self-test.
type logSource struct {
	name string
	text func() string
}

var leaks = newLeakCheck()

func newLeakCheck() *leakCheck { return &leakCheck{secrets: map[string]string{}} }

// minSecretLen keeps short, common strings out of the registry: they would match by chance.
const minSecretLen = 8

// secret registers s under label and returns s, for use inline where a test makes a secret.
func (l *leakCheck) secret(label, s string) string {
	if len(s) < minSecretLen {
		panic(fmt.Sprintf("leak check: secret %q is shorter than %d bytes and would match by chance", label, minSecretLen))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.secrets[s]; !ok {
		l.secrets[s] = label
	}
	return s
}

// token registers a JWT: the whole token, and its signature alone (what makes it a credential),
// so that a log line holding a cut token is found too.
func (l *leakCheck) token(label, tok string) string {
	l.secret(label, tok)
	if i := strings.LastIndexByte(tok, '.'); i >= 0 && len(tok)-i-1 >= minSecretLen {
		l.secret(label+" (signature)", tok[i+1:])
	}
	return tok
}

// addLog registers a captured log.
func (l *leakCheck) addLog(name string, text func() string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logs = append(l.logs, logSource{name: name, text: text})
}

// require marks the check as one the run depends on: from then on an empty registry fails it.
func (l *leakCheck) require() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.required = true
}

// forms returns the spellings a secret may take in a log line: as is, percent-encoded (a query
// or form value), and JSON-escaped (a JSON log or body).
func forms(s string) []string {
	out := []string{s}
	for _, f := range []string{url.QueryEscape(s), url.PathEscape(s), jsonEscaped(s)} {
		if f != s && !contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// check searches every log for every secret. Its error names the log and the secret's label,
// never the secret. When required, an empty registry (no secret, no log, or no byte logged) is an
// error: a check that looked at nothing proves nothing.
func (l *leakCheck) check() error {
	l.mu.Lock()
	secrets := make(map[string]string, len(l.secrets))
	for s, label := range l.secrets {
		secrets[s] = label
	}
	logs := append([]logSource(nil), l.logs...)
	required := l.required
	l.mu.Unlock()

	var errs []error
	total := 0
	var hits []string
	for _, src := range logs {
		text := src.text()
		total += len(text)
		for s, label := range secrets {
			for _, f := range forms(s) {
				if strings.Contains(text, f) {
					hits = append(hits, fmt.Sprintf("log of %s contains %s", src.name, label))
					break
				}
			}
		}
	}
	sort.Strings(hits)
	for _, h := range hits {
		errs = append(errs, errors.New(h))
	}
	if required {
		switch {
		case len(secrets) == 0:
			errs = append(errs, errors.New("no secret was registered"))
		case len(logs) == 0:
			errs = append(errs, errors.New("no log was captured"))
		case total == 0:
			errs = append(errs, errors.New("the captured logs are empty"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("leak check (%d secrets, %d logs, %d bytes): %w", len(secrets), len(logs), total, errors.Join(errs...))
	}
	return nil
}

// stats returns how many secrets and logs are registered and the bytes logged so far.
func (l *leakCheck) stats() (secrets, logs, bytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, src := range l.logs {
		bytes += len(src.text())
	}
	return len(l.secrets), len(l.logs), bytes
}

// TestMain runs the package's tests, then the leak check over every binary they started.
func TestMain(m *testing.M) {
	code := m.Run()
	sharedDirs.removeAll()
	if err := leaks.check(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		code = 1
	} else if s, l, b := leaks.stats(); l > 0 {
		fmt.Fprintf(os.Stderr, "leak check: %d secrets searched in %d binary logs (%d bytes): none found\n", s, l, b)
	}
	os.Exit(code)
}

// TestSecurityLeakCheckFindsPlantedSecret proves the final check is not vacuous: a secret
// planted in a log, in any of the spellings a log line gives it, is found and reported by label
// only; an empty registry fails once required; a clean log passes.
func TestSecurityLeakCheckFindsPlantedSecret(t *testing.T) {
	const planted = "planted-s3cret/with&special=chars"
	for _, spelling := range forms(planted) {
		l := newLeakCheck()
		l.secret("the planted secret", planted)
		l.addLog("clean", func() string { return "level=INFO msg=decision path=live/cam\n" })
		l.addLog("leaky", func() string { return "level=WARN msg=oops value=" + spelling + "\n" })
		err := l.check()
		if err == nil {
			t.Fatalf("spelling %q: planted secret not found", spelling)
		}
		if !strings.Contains(err.Error(), "log of leaky contains the planted secret") || strings.Contains(err.Error(), "log of clean") {
			t.Errorf("spelling %q: got %v, want one hit in the leaky log", spelling, err)
		}
		if strings.Contains(err.Error(), planted) {
			t.Errorf("the report repeats the secret: %v", err)
		}
	}
	tok := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtdG9rZW4"
	l := newLeakCheck()
	l.token("a token", tok)
	l.addLog("cut", func() string { return "token=..." + tok[30:] + "\n" })
	if err := l.check(); err == nil {
		t.Error("a cut token whose signature is logged was not found")
	}

	empty := newLeakCheck()
	empty.require()
	if err := empty.check(); err == nil {
		t.Error("a required check with nothing registered passed")
	}
	clean := newLeakCheck()
	clean.require()
	clean.secret("x", "not-in-any-log-0123")
	clean.addLog("quiet", func() string { return "" })
	if err := clean.check(); err == nil {
		t.Error("a required check over empty logs passed")
	}
	clean.addLog("busy", func() string { return "msg=decision\n" })
	if err := clean.check(); err != nil {
		t.Errorf("clean logs: %v", err)
	}
}
