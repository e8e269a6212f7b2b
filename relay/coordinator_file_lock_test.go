//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package relay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// TestFileCoordinatorLocked: a process that holds the coordinator file's
// exclusive lock delays the requests that need the coordinator by the
// coordinator's Timeout at most: a SUBSCRIBE to a namespace no local
// publisher has gets SUBSCRIBE_ERROR, a PUBLISH_NAMESPACE gets
// PUBLISH_NAMESPACE_ERROR, and the coordinator's error names the locked
// file. Before, they waited for the lock for as long as the requester's
// session lasted, with no answer.
func TestFileCoordinatorLocked(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const slack = 2 * time.Second
	path := filepath.Join(t.TempDir(), "coordinator.json")
	if err := os.WriteFile(path, []byte(`{"namespaces": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	const node = "moqt://127.0.0.1:1"
	c, err := relay.NewFileCoordinator(relay.FileCoordinatorConfig{Path: path, Node: node, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e := startRelayWith(t, "moqt", relay.Config{Coordinator: c, Node: node})

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), timeout+slack)
	defer cancel()
	start := time.Now()
	_, err = e.connect("/", nil).Subscribe(ctx, wire.Namespace{"elsewhere"}, "t", moqtransport.SubscribeOptions{})
	wantRequestCode(t, "SUBSCRIBE while the coordinator file is locked", err, uint64(wire.SubscribeInternalError))
	_, err = e.connect("/", nil).PublishNamespace(ctx, wire.Namespace{"mine"}, nil)
	wantRequestCode(t, "PUBLISH_NAMESPACE while the coordinator file is locked", err, uint64(wire.NamespaceInternalError))
	if d := time.Since(start); d > 2*timeout+slack {
		t.Errorf("the two answers took %v, want about twice the coordinator's timeout (%v)", d, timeout)
	}
	lctx, lcancel := context.WithTimeout(context.Background(), timeout+slack)
	defer lcancel()
	_, err = c.Lookup(lctx, "", wire.Namespace{"elsewhere"})
	if err == nil || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), path) {
		t.Errorf("Lookup while the file is locked: %v, want an error saying %s is locked", err, path)
	}

	unlock()
	if _, err := c.Lookup(context.Background(), "", wire.Namespace{"elsewhere"}); !errors.Is(err, relay.ErrNotFound) {
		t.Errorf("Lookup once the file is unlocked: %v, want ErrNotFound", err)
	}
}
