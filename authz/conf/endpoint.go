package conf

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Endpoint is a streaming server's control API that gatehouse calls (MediaMTX's API, SRS's HTTP
// API, nginx-rtmp's control module), written as
//
//	url: http://127.0.0.1:9997   # http or https; no user:pass@ (use user and password)
//	user: gatehouse              # optional: HTTP Basic credentials the API requires
//	password: ${MTX_API_PASS}
//
// The zero Endpoint (no url) means "not configured". The password never appears in an error.
type Endpoint struct {
	URL      string `yaml:"url"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// Configured reports whether a URL is set.
func (e Endpoint) Configured() bool { return e.URL != "" }

// UnmarshalYAML decodes strictly and checks the URL, with the line of each problem.
func (e *Endpoint) UnmarshalYAML(n *yaml.Node) error {
	type plain Endpoint
	var raw plain
	if err := Strict(n, &raw); err != nil {
		return err
	}
	*e = Endpoint(raw)
	if e.URL == "" {
		if e.User != "" || e.Password != "" {
			return Errorf(n, "user and password need a url")
		}
		return nil
	}
	u, err := url.Parse(e.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return Errorf(Value(n, "url"), "url must be an http:// or https:// address such as http://127.0.0.1:9997")
	case u.User != nil:
		return Errorf(Value(n, "url"), "url must not carry user:password@; use user and password")
	case u.RawQuery != "" || u.Fragment != "":
		return Errorf(Value(n, "url"), "url must not have a query or fragment")
	}
	e.URL = strings.TrimRight(e.URL, "/")
	return nil
}

// SetAuth puts the endpoint's Basic credentials, if any, on r.
func (e Endpoint) SetAuth(r *http.Request) {
	if e.User != "" || e.Password != "" {
		r.SetBasicAuth(e.User, e.Password)
	}
}

// DefaultCallTimeout bounds a Call made with a nil client.
const DefaultCallTimeout = 5 * time.Second

// maxCallBody bounds how much of an answer Call reads.
const maxCallBody = 64 << 10

// Call sends method to the endpoint's URL + pathAndQuery (already escaped) with its Basic
// credentials, through client (nil: one with DefaultCallTimeout), and returns the status and at
// most 64 KiB of the body. A transport error never carries the password.
func (e Endpoint) Call(ctx context.Context, client *http.Client, method, pathAndQuery string) (int, []byte, error) {
	if client == nil {
		client = &http.Client{Timeout: DefaultCallTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+pathAndQuery, nil)
	if err != nil {
		return 0, nil, err
	}
	e.SetAuth(req)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCallBody))
	return resp.StatusCode, body, err
}
