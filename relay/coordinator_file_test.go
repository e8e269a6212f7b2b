package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

func fileCoordinator(t *testing.T, path, node string) *relay.FileCoordinator {
	t.Helper()
	c, err := relay.NewFileCoordinator(relay.FileCoordinatorConfig{Path: path, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readJSON(t *testing.T, path string) map[string]map[string]map[string]string {
	t.Helper()
	// Under the coordinators' lock: they rewrite the file in place.
	b, err := relay.ReadCoordinatorFileLocked(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]map[string]map[string]string
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("the file is not the coordinator's JSON: %v\n%s", err, b)
	}
	return v
}

func wantLookup(t *testing.T, c relay.Coordinator, scope string, ns wire.Namespace, want string) {
	t.Helper()
	got, err := c.Lookup(context.Background(), scope, ns)
	if want == "" {
		if !errors.Is(err, relay.ErrNotFound) {
			t.Errorf("Lookup(%q, %v) = %q, %v; want ErrNotFound", scope, ns, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("Lookup(%q, %v) = %q, %v; want %q", scope, ns, got, err, want)
	}
}

// wantServedElsewhere checks that c refuses to register ns in scope
// because owner serves it.
func wantServedElsewhere(t *testing.T, c relay.Coordinator, scope string, ns wire.Namespace, owner string) {
	t.Helper()
	reg, err := c.Register(context.Background(), scope, ns)
	if err == nil {
		_ = reg.Close()
		t.Fatalf("Register(%q, %v) succeeded; want ErrServedElsewhere (%s serves it)", scope, ns, owner)
	}
	if !errors.Is(err, relay.ErrServedElsewhere) || !strings.Contains(err.Error(), owner) {
		t.Fatalf("Register(%q, %v): %v; want ErrServedElsewhere naming %s", scope, ns, err, owner)
	}
}

// TestFileCoordinatorSharedFile runs two relays' coordinators on one file.
func TestFileCoordinatorSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	const nodeA, nodeB = "moqt://127.0.0.1:1", "https://127.0.0.1:2/"
	a, b := fileCoordinator(t, path, nodeA), fileCoordinator(t, path, nodeB)
	ctx := context.Background()
	wantLookup(t, b, "", wire.Namespace{"live"}, "") // no file yet

	// B's (live, hd) first: A may then take (live), a shorter namespace,
	// as a session may locally.
	regHD, err := b.Register(ctx, "", wire.Namespace{"live", "hd"})
	if err != nil {
		t.Fatal(err)
	}
	regLive, err := a.Register(ctx, "", wire.Namespace{"live"})
	if err != nil {
		t.Fatal(err)
	}
	wantServedElsewhere(t, b, "", wire.Namespace{"live"}, nodeA)
	// A namespace under one another relay holds is that relay's too.
	wantServedElsewhere(t, b, "", wire.Namespace{"live", "sd"}, nodeA)
	if _, err := b.Register(ctx, "/room", wire.Namespace{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	// Ownership is per scope: the unscoped (live) does not hold /room's.
	regRoomLive, err := b.Register(ctx, "/room", wire.Namespace{"live", "sd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := regRoomLive.Close(); err != nil {
		t.Fatal(err)
	}
	// moq-rs's layout.
	want := map[string]map[string]map[string]string{"namespaces": {
		"":      {"/live": nodeA, "/live/hd": nodeB},
		"/room": {"/x/y": nodeB},
	}}
	if got := readJSON(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("file %v, want %v", got, want)
	}

	// Longest prefix, field by field, of the requested namespace only.
	for _, c := range []relay.Coordinator{a, b} {
		wantLookup(t, c, "", wire.Namespace{"live"}, nodeA)
		wantLookup(t, c, "", wire.Namespace{"live", "sd"}, nodeA)
		wantLookup(t, c, "", wire.Namespace{"live", "hd"}, nodeB)
		wantLookup(t, c, "", wire.Namespace{"live", "hd", "720"}, nodeB)
		wantLookup(t, c, "", wire.Namespace{"liv"}, "")
		wantLookup(t, c, "", wire.Namespace{"livestream"}, "")
		// (x, y) is registered: (x) is not served by it (moq-rs says it is).
		wantLookup(t, c, "/room", wire.Namespace{"x"}, "")
		wantLookup(t, c, "/room", wire.Namespace{"x", "y", "z"}, nodeB)
		wantLookup(t, c, "/other", wire.Namespace{"x", "y"}, "")
		// A lookup is in its scope only: the relay falls back itself.
		wantLookup(t, c, "/room", wire.Namespace{"live", "hd"}, "")
	}

	// Close removes only our own entry: A's entry, taken over by B after
	// A's removal was lost (edited by hand here), stays B's.
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(raw), `"/live": "`+nodeA, `"/live": "`+nodeB, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := regLive.Close(); err != nil {
		t.Fatal(err)
	}
	wantLookup(t, a, "", wire.Namespace{"live"}, nodeB)
	if err := regHD.Close(); err != nil {
		t.Fatal(err)
	}
	if err := regHD.Close(); err != nil { // twice is harmless
		t.Fatal(err)
	}
	want = map[string]map[string]map[string]string{"namespaces": {
		"":      {"/live": nodeB},
		"/room": {"/x/y": nodeB},
	}}
	if got := readJSON(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("file %v, want %v", got, want)
	}
	// Closing the coordinator removes its registrations still open.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wantLookup(t, a, "/room", wire.Namespace{"x", "y"}, "")
}

// TestFileCoordinatorOwnEntry: an entry with our own URL (left by an
// earlier run of this relay) is ours to take; a namespace registered again
// while its first registration is open stays until the last Close.
func TestFileCoordinatorOwnEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	const node = "moqt://127.0.0.1:1"
	if err := os.WriteFile(path, []byte(`{"namespaces": {"": {"/bbb": "`+node+`", "/50%": "moqt://moq-rs/"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := fileCoordinator(t, path, node)
	ctx := context.Background()
	wantLookup(t, c, "", wire.Namespace{"50%", "x"}, "moqt://moq-rs/") // moq-rs's unescaped "%"
	r1, err := c.Register(ctx, "", wire.Namespace{"bbb"})
	if err != nil {
		t.Fatalf("our own stale entry: %v", err)
	}
	r2, err := c.Register(ctx, "", wire.Namespace{"bbb"})
	if err != nil {
		t.Fatal(err)
	}
	_ = r1.Close()
	wantLookup(t, c, "", wire.Namespace{"bbb"}, node)
	_ = r2.Close()
	wantLookup(t, c, "", wire.Namespace{"bbb"}, "")
	// Namespaces whose fields hold "/" or "%" keep their own keys.
	odd := []wire.Namespace{{"a/b"}, {"a", "b"}, {"100%"}, {"\xff\xfe"}}
	for i, ns := range odd {
		if _, err := c.Register(ctx, "", ns); err != nil {
			t.Fatalf("%q: %v", ns, err)
		}
		for j, other := range odd {
			if j > i {
				wantLookup(t, c, "", other, "")
			}
		}
		wantLookup(t, c, "", ns, node)
	}
	if got := readJSON(t, path)["namespaces"][""]; !reflect.DeepEqual(got, map[string]string{
		"/a%2Fb": node, "/a/b": node, "/100%25": node, "/%FF%FE": node, "/50%": "moqt://moq-rs/",
	}) {
		t.Errorf("keys %v", got)
	}
}

// TestFileCoordinatorConcurrent has two relays register and remove
// namespaces at once: the locks keep every change.
func TestFileCoordinatorConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	cs := []*relay.FileCoordinator{fileCoordinator(t, path, "moqt://a"), fileCoordinator(t, path, "moqt://b")}
	const n = 25
	regs := make([][]relay.Registration, len(cs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, c := range cs {
		for j := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Lookups run alongside under the shared lock.
				_, _ = c.Lookup(context.Background(), "", wire.Namespace{"x"})
				r, err := c.Register(context.Background(), "", wire.Namespace{fmt.Sprintf("%d-%d", i, j)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				regs[i] = append(regs[i], r)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if got := len(readJSON(t, path)["namespaces"][""]); got != len(cs)*n {
		t.Fatalf("%d entries, want %d", got, len(cs)*n)
	}
	for i := range cs {
		for _, r := range regs[i] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.Close(); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if got := readJSON(t, path)["namespaces"]; len(got) != 0 {
		t.Fatalf("entries left: %v", got)
	}
}

func TestFileCoordinatorRefusesABrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := fileCoordinator(t, path, "moqt://a")
	if _, err := c.Register(context.Background(), "", wire.Namespace{"x"}); err == nil {
		t.Error("registered into a broken file")
	}
	if _, err := c.Lookup(context.Background(), "", wire.Namespace{"x"}); err == nil || errors.Is(err, relay.ErrNotFound) {
		t.Errorf("lookup in a broken file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Errorf("the broken file was rewritten: %q", b)
	}
	if _, err := relay.NewFileCoordinator(relay.FileCoordinatorConfig{Path: path}); err == nil {
		t.Error("a coordinator without Node")
	}
}
