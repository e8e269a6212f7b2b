package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// TestMlogFilesClosedPerSession: moq-relay --mlog-dir and a run of
// connect-and-close sessions. Each session's file is written and closed
// when the session ends, so the relay's open files return to where they
// were (it used to keep every file open until exit: 950 fds after 1,500
// sessions).
func TestMlogFilesClosedPerSession(t *testing.T) {
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	dir := filepath.Join(t.TempDir(), "mlog")
	r := startRelayConfig(t, config{ops: opsConfig{mlogDir: dir, maxRequests: 100,
		cacheMaxBytes: moqtransport.DefaultTrackMaxBytes, cacheMaxGroups: moqtransport.DefaultTrackMaxGroups}})
	addr, fp := r.addr, r.fp
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	session := func(scheme string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s/", scheme, addr), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	files := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.mlog"))
		return len(m)
	}
	session("moqt")
	session("https")
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitUntil("the warm-up sessions' files", func() bool { return files() == 2 })
	base := fds()
	const sessions = 60
	for i := range sessions {
		session([]string{"moqt", "https"}[i%2])
	}
	waitUntil("every session's file", func() bool { return files() == 2+sessions })
	const budget = 8
	var got int
	deadline := time.Now().Add(5 * time.Second)
	for got = fds(); got > base+budget && time.Now().Before(deadline); got = fds() {
		time.Sleep(10 * time.Millisecond) // sessions end on the relay's side shortly after ours
	}
	if got > base+budget {
		t.Errorf("%d open files after %d sessions with --mlog-dir, %d before (budget +%d)", got, sessions, base, budget)
	}
	t.Logf("fds %+d after %d sessions", got-base, sessions)
}
