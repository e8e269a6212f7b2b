package cli

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestCheckURL(t *testing.T) {
	for _, raw := range []string{"moqt://localhost:4443/", "https://127.0.0.1:4443/moq", "MOQT://h/"} {
		if err := CheckURL(raw); err != nil {
			t.Errorf("CheckURL(%q) = %v", raw, err)
		}
	}
	for _, c := range []struct{ raw, want string }{
		{"localhost:4443", `URL "localhost:4443" has no scheme: use moqt://`},
		{"quic://h:1/", `URL "quic://h:1/": unsupported scheme "quic"`},
		{"moqt:///x", `URL "moqt:///x" has no host`},
		{"https://h:1/%zz", `URL "https://h:1/%zz": `},
	} {
		err := CheckURL(c.raw)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("CheckURL(%q) = %v, want %q...", c.raw, err, c.want)
		}
	}
	if err := CheckURLNamed("--relay", "h:1"); err == nil || !strings.HasPrefix(err.Error(), `--relay "h:1" has no scheme`) {
		t.Errorf("CheckURLNamed = %v", err)
	}
}

func TestParseFingerprint(t *testing.T) {
	want := [32]byte{0xab, 0xcd, 31: 0xef}
	hexs := hex.EncodeToString(want[:])
	var parts []string
	for i := 0; i < len(hexs); i += 2 {
		parts = append(parts, strings.ToUpper(hexs[i:i+2]))
	}
	for _, s := range []string{hexs, strings.Join(parts, ":"), " " + hexs + "\n"} {
		if got, err := ParseFingerprint(s); err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "abcd", hexs + "00", "zz" + hexs[2:]} {
		_, err := ParseFingerprint(s)
		if err == nil || !strings.Contains(err.Error(), "want the certificate's SHA-256 as 64 hex digits") {
			t.Errorf("ParseFingerprint(%q) = %v", s, err)
		}
	}
}

func TestFlagDefaults(t *testing.T) {
	t.Setenv("TLS_DISABLE_VERIFY", "")
	var c ClientFlags
	f := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Add(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if c.TLSRoots != nil || c.TLSDisableVerify || c.Fingerprints != nil || c.QlogDir != "" || c.LogLevel != "info" {
		t.Errorf("defaults: %+v", c)
	}
	if u := f.Lookup("tls-root").Usage; u != "root CA file (PEM) to verify the server with, instead of the system roots; repeatable" {
		t.Errorf("--tls-root usage %q", u)
	}

	t.Setenv("TLS_DISABLE_VERIFY", "true")
	var r ClientFlags
	f = pflag.NewFlagSet("x", pflag.ContinueOnError)
	r.AddWith(f, Help{Peer: "relay", QlogDir: "q", LogLevel: "l"})
	if err := f.Parse([]string{"--tls-root", "a.pem", "--tls-root", "b.pem", "--fingerprint", "x", "--fingerprint", "y"}); err != nil {
		t.Fatal(err)
	}
	if !r.TLSDisableVerify || len(r.TLSRoots) != 2 || len(r.Fingerprints) != 2 {
		t.Errorf("parsed: %+v", r)
	}
	if u := f.Lookup("tls-disable-verify").Usage; u != "do not verify the relay's certificate (env TLS_DISABLE_VERIFY)" {
		t.Errorf("--tls-disable-verify usage %q", u)
	}
	if f.Lookup("qlog-dir").Usage != "q" || f.Lookup("log-level").Usage != "l" {
		t.Error("help overrides not applied")
	}
	if _, err := r.TLS(); err == nil || !strings.HasPrefix(err.Error(), `--fingerprint "x"`) {
		t.Errorf("TLS() = %v", err)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	c := ClientFlags{LogLevel: "warn"}
	l, err := c.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "shown") {
		t.Errorf("log %q", s)
	}
	c.LogLevel = "loud"
	if _, err := c.Logger(&buf); err == nil || err.Error() != `--log-level "loud": want debug, info, warn or error` {
		t.Errorf("Logger(loud) = %v", err)
	}
}

// TestDrainSignals: the first signal cancels the context, the second
// closes force and, grace later, exits.
func TestDrainSignals(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exited := make(chan struct{})
	ctx, force := onSignals(sigs, 10*time.Millisecond, func() { close(exited) })
	sigs <- syscall.SIGTERM
	<-ctx.Done()
	select {
	case <-force:
		t.Fatal("force closed by the first signal")
	case <-exited:
		t.Fatal("exited on the first signal")
	default:
	}
	sigs <- syscall.SIGTERM
	<-force
	<-exited // the test's deadline bounds this wait
}
