package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
