package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxAnswer bounds the bytes of an answer the client reads.
const maxAnswer = 64 << 10

// Client calls a registry's routes, as moq-api's client does.
type Client struct {
	base  string
	hc    *http.Client
	own   bool
	token string
}

// An Option configures a Client.
type Option func(*Client)

// WithToken makes the client send token, the registry's shared secret, as
// "Authorization: Bearer <token>" with every request. A registry started
// with a token refuses requests without it (ErrUnauthorized).
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// NewClient returns a client of the registry at base, e.g.
// "http://127.0.0.1:8080" or "http://host/prefix" (routes go under the
// prefix; moq-api's client drops a last segment without a trailing "/").
// With hc nil the client has its own connection pool and a 10 s timeout per
// request; Close releases it.
func NewClient(base string, hc *http.Client, opts ...Option) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("api: registry URL %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: registry URL %q: want http://host[:port][/prefix]", base)
	}
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: strings.TrimRight(u.String(), "/"), hc: hc}
	if hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.own = true
	}
	// A redirect is answered, never followed: Go follows one from a
	// POST, PATCH or DELETE with a GET and no body, so a registry behind a
	// front end that redirects http:// to https:// made a registration a
	// lookup (one held by another relay then looked taken) and a refresh
	// or removal a no-op. The 3xx comes back as a *StatusError: point
	// the URL at where it redirects.
	hc2 := *c.hc
	hc2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc2
	for _, o := range opts {
		o(c)
	}
	if strings.ContainsAny(c.token, "\r\n") {
		return nil, errors.New("api: the token holds a line break")
	}
	return c, nil
}

// Close closes the idle connections of a client NewClient made its pool
// for.
func (c *Client) Close() {
	if c.own {
		c.hc.CloseIdleConnections()
	}
}

// URL returns the route of namespace ns.
func (c *Client) URL(ns string) string {
	segs := strings.Split(ns, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.base + "/origin/" + strings.Join(segs, "/")
}

// GetOrigin returns the origin of ns, or ErrNotFound.
func (c *Client) GetOrigin(ctx context.Context, ns string) (Origin, error) {
	var o Origin
	body, _, err := c.do(ctx, http.MethodGet, ns, nil)
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(body, &o); err != nil {
		return o, fmt.Errorf("api: GET %s: %w", c.URL(ns), err)
	}
	return o, nil
}

// SetOrigin registers o for ns (POST). It returns ErrConflict if another
// URL holds ns; registering again with the same URL renews the TTL.
func (c *Client) SetOrigin(ctx context.Context, ns string, o Origin) error {
	_, err := c.RegisterOrigin(ctx, ns, o)
	return err
}

// RegisterOrigin is SetOrigin, and also returns the TTL the registry
// reported for the entry in its answer (TTLHeader), or 0 if it reported
// none or one the client does not take (see ReportedTTL). Each call
// returns its own answer's, so that callers refreshing many namespaces
// from many goroutines each see what the registry told them.
func (c *Client) RegisterOrigin(ctx context.Context, ns string, o Origin) (ttl time.Duration, err error) {
	_, h, err := c.do(ctx, http.MethodPost, ns, &o)
	if err != nil {
		return 0, err
	}
	return ReportedTTL(h), nil
}

// PatchOrigin renews ns's TTL (PATCH). It returns ErrNotFound if ns has no
// origin (it expired, or Redis lost it) and ErrNotOwner if another URL
// holds it.
func (c *Client) PatchOrigin(ctx context.Context, ns string, o Origin) error {
	_, err := c.RefreshOrigin(ctx, ns, o)
	return err
}

// RefreshOrigin is PatchOrigin, and also returns the TTL the registry
// reported for the entry, as RegisterOrigin does.
func (c *Client) RefreshOrigin(ctx context.Context, ns string, o Origin) (ttl time.Duration, err error) {
	_, h, err := c.do(ctx, http.MethodPatch, ns, &o)
	if err != nil {
		return 0, err
	}
	return ReportedTTL(h), nil
}

// ReportedTTL returns the TTL an answer's header h reports (TTLHeader),
// or 0 for no report: no such header (moq-rs's moq-api sends none), more
// than one, a value that is not a decimal integer of milliseconds, or one
// outside 1 ms to MaxReportedTTL. None of these is an error: the caller
// goes on with the TTL it was configured with.
func ReportedTTL(h http.Header) time.Duration {
	v := h.Values(TTLHeader)
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > 12 {
		return 0
	}
	var ms int64
	for _, r := range v[0] {
		if r < '0' || r > '9' {
			return 0
		}
		ms = 10*ms + int64(r-'0')
	}
	ttl := time.Duration(ms) * time.Millisecond
	if ttl <= 0 || ttl > MaxReportedTTL {
		return 0
	}
	return ttl
}

// DeleteOrigin removes ns's origin (DELETE) if owner's URL holds it, else
// it returns ErrNotOwner. It returns ErrNotFound if there was none.
func (c *Client) DeleteOrigin(ctx context.Context, ns string, owner Origin) error {
	_, _, err := c.do(ctx, http.MethodDelete, ns, &owner)
	return err
}

// do sends the request and returns the body and header of a 200 answer.
func (c *Client) do(ctx context.Context, method, ns string, o *Origin) ([]byte, http.Header, error) {
	u := c.URL(ns)
	var body io.Reader
	if o != nil {
		body = bytes.NewReader(encode(*o))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	if o != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, nil, fmt.Errorf("api: %s %s: reading the answer: %w", method, u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, resp.Header, nil
	case http.StatusNotFound:
		return nil, nil, ErrNotFound
	case http.StatusConflict:
		return nil, nil, ErrConflict
	case http.StatusForbidden:
		return nil, nil, ErrNotOwner
	case http.StatusUnauthorized:
		return nil, nil, fmt.Errorf("%w: %s %s: %s", ErrUnauthorized, method, u, strings.TrimSpace(string(b)))
	}
	msg := strings.TrimSpace(string(b))
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		msg = "redirected to " + loc + " (not followed: use that URL)"
	}
	return nil, nil, &StatusError{Method: method, URL: u, Code: resp.StatusCode, Body: msg}
}
