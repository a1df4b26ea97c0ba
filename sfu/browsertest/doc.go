// Package browsertest holds gatehouse's end-to-end test of the SFU with a real browser: headless
// Debian Chromium, driven over the DevTools protocol (chromedp), publishes its fake camera and
// microphone from the /publish page over WHIP and plays it back on the /watch page over WHEP,
// with tokens verified by a real authz engine (gatehouse's own issuer for the publisher, an
// HS256 "identity provider" JWT with a realm role for the viewer).
//
// The package has no non-test code. Chromium is installed with apt-get when missing and the
// test runs as root; otherwise the test fails, unless GATEHOUSE_ALLOW_SKIP=1 lets it skip.
package browsertest
