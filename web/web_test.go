package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	if r := get("GET", "/?name=live/one"); r.Code != 200 || !strings.HasPrefix(r.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(r.Body.String(), `<script type="module" src="watch.js">`) {
		t.Errorf("GET /: %d %s", r.Code, r.Header().Get("Content-Type"))
	}
	r := get("GET", "/watch.js")
	if r.Code != 200 || !strings.Contains(r.Header().Get("Content-Type"), "javascript") {
		t.Errorf("GET /watch.js: %d %s", r.Code, r.Header().Get("Content-Type"))
	}
	// The bundle holds the client: the draft-14 version it offers.
	if !strings.Contains(r.Body.String(), "4278190094") && !strings.Contains(r.Body.String(), "0xff00000e") {
		t.Error("the bundle does not offer draft-14 (0xff00000e)")
	}
	for _, path := range []string{"/index.html", "/src/moq.js", "/dist/watch.js", "/web.go", "/package.json"} {
		if r := get("GET", path); r.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.Code)
		}
	}
	if r := get("POST", "/"); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", r.Code)
	}
}
