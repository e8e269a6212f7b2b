// Package browser holds the browser interop test of moq-go: headless
// Chromium, driven through the DevTools protocol with chromedp, loads a
// small test page (page.html, plain JavaScript with no build step) that
// speaks MoQT draft-ietf-moq-transport-14 over WebTransport to moq-relay
// and subscribes to the clock track that moq-clock --publish serves.
//
// The page reaches the relay's generated self-signed certificate only by
// its SHA-256 hash (WebTransport's serverCertificateHashes); the test also
// loads it with a wrong hash and with none, and both must fail to connect.
//
// It is a module of its own so that chromedp stays out of the library's
// go.mod and out of the interop module. Run it from this directory with
//
//	GOWORK=off go test -count=1 -v ./...
//
// It needs Chromium (Debian's chromium package, /usr/bin/chromium; set
// CHROMIUM to use another binary) and fails, rather than skips, without it.
package browser
