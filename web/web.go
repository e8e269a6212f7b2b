// Package web holds moq-relay's watch page: a page that lists the
// broadcasts a relay carries (SUBSCRIBE_NAMESPACE) and plays one with
// WebCodecs, speaking MoQT draft-14 over WebTransport to the relay that
// served it.
//
// The page's sources are in src/ (plain JavaScript modules); esbuild bundles
// them into dist/watch.js, which is committed so that building moq-relay
// needs no Node. package.json and package-lock.json pin esbuild; dev/test
// rebuilds the bundle (npm ci && npm run build) and fails if it differs
// from the committed one. To change the page: edit src/, run
// `npm ci && npm run build` here, and commit dist/ with the sources.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html dist/watch.js
var files embed.FS

// Handler serves the page at / and its script at /watch.js. Anything else
// is not found, so that it can sit beside other routes on one mux.
func Handler() http.Handler {
	dist, err := fs.Sub(files, "dist")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	script := http.FileServerFS(dist)
	page, err := files.ReadFile("index.html")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /watch.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		script.ServeHTTP(w, r)
	})
	return mux
}
