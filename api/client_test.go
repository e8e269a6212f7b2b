package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/api"
)

// A redirect is answered as an error, never followed: Go follows one from
// a POST with a GET, which made a registration a lookup that found
// another relay's entry and reported success.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/moved") {
			if r.Method != http.MethodGet {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			_, _ = w.Write([]byte(`{"url":"moqt://b"}`))
			return
		}
		http.Redirect(w, r, "/moved"+r.URL.Path, http.StatusMovedPermanently)
	}))
	defer hs.Close()
	c, err := api.NewClient(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.SetOrigin(context.Background(), ":6c697665", api.Origin{URL: "moqt://a"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusMovedPermanently || !strings.Contains(se.Body, "/moved") {
		t.Errorf("POST answered with a redirect: %v, want a *StatusError 301 naming where it redirects", err)
	}
}

// The TTL a registry reports with a POST or PATCH (api.TTLHeader) is
// returned; a missing one (moq-rs's moq-api) or one the client does not
// take (not a decimal integer of milliseconds, repeated, 0, over
// api.MaxReportedTTL) is 0, no report, and never an error.
func TestClientReportedTTL(t *testing.T) {
	var values atomic.Pointer[[]string] // the header's values in the next answers
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, v := range *values.Load() {
			w.Header().Add(api.TTLHeader, v)
		}
	}))
	defer hs.Close()
	c, err := api.NewClient(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	o := api.Origin{URL: "moqt://a"}
	for _, tc := range []struct {
		values []string
		want   time.Duration
	}{
		{[]string{"30000"}, 30 * time.Second},
		{[]string{"1"}, time.Millisecond},
		{[]string{" 600000 "}, api.DefaultTTL}, // HTTP trims the spaces around a value
		{[]string{"86400000"}, api.MaxReportedTTL},
		{nil, 0},
		{[]string{""}, 0},
		{[]string{"0"}, 0},
		{[]string{"-300"}, 0},
		{[]string{"+300"}, 0},
		{[]string{"30s"}, 0},
		{[]string{"30.5"}, 0},
		{[]string{"0x10"}, 0},
		{[]string{"86400001"}, 0},                // over a day
		{[]string{"99999999999999999999999"}, 0}, // overflows
		{[]string{"300", "300"}, 0},
	} {
		values.Store(&tc.values)
		ttl, err := c.RegisterOrigin(ctx, ":01", o)
		if err != nil || ttl != tc.want {
			t.Errorf("POST answered with %s %q: %v, %v; want %v", api.TTLHeader, tc.values, ttl, err, tc.want)
		}
		ttl, err = c.RefreshOrigin(ctx, ":01", o)
		if err != nil || ttl != tc.want {
			t.Errorf("PATCH answered with %s %q: %v, %v; want %v", api.TTLHeader, tc.values, ttl, err, tc.want)
		}
		if err := c.SetOrigin(ctx, ":01", o); err != nil {
			t.Errorf("SetOrigin answered with %s %q: %v", api.TTLHeader, tc.values, err)
		}
		if err := c.PatchOrigin(ctx, ":01", o); err != nil {
			t.Errorf("PatchOrigin answered with %s %q: %v", api.TTLHeader, tc.values, err)
		}
	}
}
