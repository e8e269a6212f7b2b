package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
)

// startWebRelay runs the relay with cfg on a free port of 127.0.0.1 until
// the test ends, and returns its address and certificate fingerprint. A TCP
// port already taken (the web server's) is retried with another.
func startWebRelay(t *testing.T, cfg config) (addr net.Addr, fp string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r, err := tryStartRelay(t, cfg)
		switch {
		case err == nil:
			return r.addr, r.fpHex
		case attempt < 3 && strings.Contains(err.Error(), "listening on TCP"):
			continue
		}
		t.Fatal(err)
	}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

// pinnedClient trusts exactly the certificate whose SHA-256 is fp.
func pinnedClient(fp string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, // replaced by the pin below
				VerifyConnection: func(cs tls.ConnectionState) error {
					sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
					if hex.EncodeToString(sum[:]) != fp {
						return errors.New("not the relay's certificate")
					}
					return nil
				},
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestWebDev: with --dev and the generated certificate, one TCP port
// serves plain HTTP and HTTPS: the watch page, its script and
// /fingerprint over either, and a connection that says nothing does not
// hold the others up.
func TestWebDev(t *testing.T) {
	addr, fp := startWebRelay(t, config{dev: devConfig{enabled: true}})
	c := pinnedClient(fp)

	// A client that connects and sends nothing.
	idle, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	for _, scheme := range []string{"http", "https"} {
		base := scheme + "://" + addr.String()
		resp, body := get(t, c, base+"/")
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="watch.js"`) {
			t.Errorf("%s/: %d %s %.80q", base, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		resp, body = get(t, c, base+"/watch.js")
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(body, "SUBSCRIBE_NAMESPACE") {
			t.Errorf("%s/watch.js: %d %s", base, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp, body = get(t, c, base+"/fingerprint"); resp.StatusCode != 200 || body != fp {
			t.Errorf("%s/fingerprint: %d %q, want %q", base, resp.StatusCode, body, fp)
		}
		if resp, _ = get(t, c, base+"/nothing"); resp.StatusCode != 404 {
			t.Errorf("%s/nothing: %d", base, resp.StatusCode)
		}
	}
}

// TestWebWithCertificateFiles: with certificates from files (--web, no
// --dev), the page is served over HTTPS only; plain HTTP is redirected
// there, and the dev routes are not served.
func TestWebWithCertificateFiles(t *testing.T) {
	ss, err := moqnative.GenerateSelfSigned("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := x509.MarshalPKCS8PrivateKey(ss.Certificate.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ss.DER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := startWebRelay(t, config{tlsCerts: []string{certFile}, tlsKeys: []string{keyFile}, dev: devConfig{web: true}})
	sum := sha256.Sum256(ss.DER)
	c := pinnedClient(hex.EncodeToString(sum[:]))

	resp, _ := get(t, c, "http://"+addr.String()+"/?name=live/one")
	if want := "https://" + addr.String() + "/?name=live/one"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want a redirect to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, body := get(t, c, "https://"+addr.String()+"/")
	if resp.StatusCode != 200 || !bytes.Contains([]byte(body), []byte(`src="watch.js"`)) {
		t.Errorf("https: %d %.80q", resp.StatusCode, body)
	}
	if resp, _ = get(t, c, "https://"+addr.String()+"/fingerprint"); resp.StatusCode != 404 {
		t.Errorf("/fingerprint without --dev: %d", resp.StatusCode)
	}
}

// TestWebSelfSignedServesFingerprint: --web without --dev and with the
// generated certificate serves /fingerprint with the page, which pins the
// certificate by it when loaded over plain HTTP (it got 404 and never
// connected); the other dev routes stay off.
func TestWebSelfSignedServesFingerprint(t *testing.T) {
	addr, fp := startWebRelay(t, config{dev: devConfig{web: true}})
	c := pinnedClient(fp)
	base := "http://" + addr.String()
	if resp, body := get(t, c, base+"/fingerprint"); resp.StatusCode != 200 || body != fp {
		t.Errorf("/fingerprint with --web and the generated certificate: %d %q, want %q", resp.StatusCode, body, fp)
	}
	if resp, _ := get(t, c, base+"/qlog/x"); resp.StatusCode != 404 {
		t.Errorf("/qlog/x without --dev: %d, want 404", resp.StatusCode)
	}
}

// TestWebIdleConnectionClosed: a keep-alive connection that asks nothing
// more is closed after webIdleTimeout (it was held for good).
func TestWebIdleConnectionClosed(t *testing.T) {
	defer func(d time.Duration) { webIdleTimeout = d }(webIdleTimeout)
	webIdleTimeout = 200 * time.Millisecond
	addr, _ := startWebRelay(t, config{dev: devConfig{web: true}})
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("reading an idle keep-alive connection: %v, want io.EOF (closed by the server)", err)
	}
}
