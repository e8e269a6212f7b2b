package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/moqgo/moq/moqtransport/wire"
)

// DefaultCoordinatorFile is moq-rs's default --coordinator-file.
const DefaultCoordinatorFile = "/tmp/moq-coordinator.json"

// registrationCloseTimeout bounds removing a registration, which has no
// caller's context.
const registrationCloseTimeout = 5 * time.Second

// FileCoordinatorConfig configures a FileCoordinator.
type FileCoordinatorConfig struct {
	// Path is the JSON file the relays share.
	Path string
	// Node is this relay's URL, what it registers (Config.Node).
	Node string
	// Logger receives the coordinator's logs; nil is silent.
	Logger *slog.Logger
	// Timeout bounds how long Register, Lookup and a registration's
	// Close wait for the file's lock: a process that holds it (an
	// exclusive flock) must not leave every request that needs the
	// coordinator without an answer. Default DefaultCoordinatorFileTimeout.
	Timeout time.Duration
}

// DefaultCoordinatorFileTimeout is the default of
// FileCoordinatorConfig.Timeout.
const DefaultCoordinatorFileTimeout = 5 * time.Second

// FileCoordinator is moq-rs's file coordinator: the relays of one host
// share a JSON file,
//
//	{"namespaces": {"<scope>": {"/<field>/<field>": "<relay URL>"}}}
//
// ("" is the unscoped scope), read under a shared flock and rewritten in
// place under an exclusive one. Unlike moq-rs's:
//
//   - Register refuses a namespace when another relay's URL holds it or
//     a prefix of it in the scope (moq-rs overwrites it), under the same
//     exclusive lock as the write, so two relays cannot both take it; an
//     entry with our own URL, left by an earlier run of this relay, is
//     ours to take.
//   - Closing a registration removes the entry only if it is still ours.
//   - Lookup is by longest prefix of the requested namespace, field by
//     field: a registered (a, b) does not serve a request for (a), nor
//     (ab) one for (a, b...). moq-rs compares the shorter of the two, both
//     ways.
//   - Fields holding "/", "%" or bytes that are not UTF-8 are written with
//     those bytes %XX-escaped, so that every namespace has its own key;
//     other fields are written as moq-rs does.
//   - Lookup is in one scope; the relay falls back to the unscoped scope
//     itself.
//
// Entries of a relay that dies stay in the file (there is no TTL): another
// relay cannot take those namespaces until the entries are removed, or the
// relay comes back with the same Node and takes them again.
type FileCoordinator struct {
	path, node string
	timeout    time.Duration // for the lock; 0 is the default
	log        *slog.Logger
	regs       registrations
}

// NewFileCoordinator returns a coordinator over the file at cfg.Path; the
// file is created at the first registration.
func NewFileCoordinator(cfg FileCoordinatorConfig) (*FileCoordinator, error) {
	if cfg.Path == "" {
		return nil, errors.New("relay: the file coordinator needs a file path")
	}
	if cfg.Node == "" {
		return nil, errors.New("relay: the file coordinator needs this relay's URL (Node)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &FileCoordinator{path: cfg.Path, node: cfg.Node, timeout: cfg.Timeout, log: cfg.Logger}, nil
}

// coordinatorFile is the file's JSON.
type coordinatorFile struct {
	Namespaces map[string]map[string]string `json:"namespaces"`
}

// Register records this relay's URL for ns in scope.
func (c *FileCoordinator) Register(ctx context.Context, scope string, ns wire.Namespace) (Registration, error) {
	key := namespacePath(ns)
	return c.regs.register(scope+"\x00"+key, func() error {
		return c.update(ctx, func(f *coordinatorFile) error {
			entries := f.Namespaces[scope]
			if entries == nil {
				entries = map[string]string{}
				f.Namespaces[scope] = entries
			}
			for k, u := range entries {
				if reg, ok := parseNamespacePath(k); ok && u != c.node && ns.HasPrefix(reg) {
					return fmt.Errorf("%w: namespace %s (scope %q) is served by relay %s (as %s)", ErrServedElsewhere, ns, scope, u, reg)
				}
			}
			entries[key] = c.node
			return nil
		})
	}, func() error {
		// Closing has no caller's context: bound it ourselves.
		ctx, cancel := context.WithTimeout(context.Background(), registrationCloseTimeout)
		defer cancel()
		return c.update(ctx, func(f *coordinatorFile) error {
			entries := f.Namespaces[scope]
			if entries[key] != c.node {
				return errUnchanged // gone, or another relay's now
			}
			delete(entries, key)
			if len(entries) == 0 {
				delete(f.Namespaces, scope)
			}
			return nil
		})
	})
}

// Lookup returns the URL registered for the longest prefix of ns in scope.
func (c *FileCoordinator) Lookup(ctx context.Context, scope string, ns wire.Namespace) (string, error) {
	f, err := c.read(ctx)
	if err != nil {
		return "", err
	}
	best, bestLen := "", -1
	for key, u := range f.Namespaces[scope] {
		reg, ok := parseNamespacePath(key)
		if ok && len(reg) > bestLen && ns.HasPrefix(reg) {
			best, bestLen = u, len(reg)
		}
	}
	if bestLen < 0 {
		return "", ErrNotFound
	}
	return best, nil
}

// errUnchanged makes update leave the file as it is.
var errUnchanged = errors.New("unchanged")

// update rewrites the file with fn's changes under an exclusive lock.
func (c *FileCoordinator) update(ctx context.Context, fn func(*coordinatorFile) error) error {
	fh, err := os.OpenFile(c.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("coordinator file: %w", err)
	}
	defer fh.Close()
	if err := c.lock(ctx, fh, true); err != nil {
		return err
	}
	defer unlockFile(fh)
	f, err := readCoordinatorFile(fh, c.path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		if errors.Is(err, errUnchanged) {
			return nil
		}
		return err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("coordinator file: %w", err)
	}
	// In place, so that the lock (on this inode) keeps guarding it.
	if _, err := fh.WriteAt(b.Bytes(), 0); err != nil {
		return fmt.Errorf("coordinator file %s: %w", c.path, err)
	}
	if err := fh.Truncate(int64(b.Len())); err != nil {
		return fmt.Errorf("coordinator file %s: %w", c.path, err)
	}
	return nil
}

// read reads the file under a shared lock; a missing file is empty.
func (c *FileCoordinator) read(ctx context.Context) (*coordinatorFile, error) {
	fh, err := os.Open(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return &coordinatorFile{Namespaces: map[string]map[string]string{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("coordinator file: %w", err)
	}
	defer fh.Close()
	if err := c.lock(ctx, fh, false); err != nil {
		return nil, err
	}
	defer unlockFile(fh)
	return readCoordinatorFile(fh, c.path)
}

// lock takes the file's lock, exclusive or shared, waiting no longer than
// the coordinator's timeout (or ctx). Every request that needs the
// coordinator waits here: whoever holds the lock (another relay mid-write,
// or any process that took an exclusive flock and keeps it) delays them
// by that much at most, and they get an error saying the file is locked.
func (c *FileCoordinator) lock(ctx context.Context, fh *os.File, exclusive bool) error {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = DefaultCoordinatorFileTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := lockFile(lctx, fh, exclusive)
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("coordinator file %s is locked: another process held its lock for %v: %w", c.path, timeout, err)
	}
	return fmt.Errorf("coordinator file %s: locking: %w", c.path, err)
}

func readCoordinatorFile(r io.Reader, path string) (*coordinatorFile, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("coordinator file %s: %w", path, err)
	}
	f := &coordinatorFile{}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, f); err != nil {
			return nil, fmt.Errorf("coordinator file %s is not the coordinator's JSON: %w", path, err)
		}
	}
	if f.Namespaces == nil {
		f.Namespaces = map[string]map[string]string{}
	}
	return f, nil
}

// namespacePath is a namespace's key in the coordinator file: "/" before
// each field, as moq-rs's to_utf8_path, with "%", "/" and bytes that are
// not UTF-8 %XX-escaped.
func namespacePath(ns wire.Namespace) string {
	var b strings.Builder
	for _, f := range ns {
		b.WriteByte('/')
		for i := 0; i < len(f); {
			r, n := utf8.DecodeRuneInString(f[i:])
			if f[i] == '%' || f[i] == '/' || (r == utf8.RuneError && n <= 1) {
				fmt.Fprintf(&b, "%%%02X", f[i])
				i++
				continue
			}
			b.WriteString(f[i : i+n])
			i += n
		}
	}
	return b.String()
}

// parseNamespacePath reads a key of the coordinator file back into a
// namespace. A "%" that is not an escape stays as it is (moq-rs writes
// them unescaped).
func parseNamespacePath(key string) (wire.Namespace, bool) {
	if !strings.HasPrefix(key, "/") {
		return nil, false
	}
	fields := strings.Split(key[1:], "/")
	for i, f := range fields {
		if strings.Contains(f, "%") {
			if u, err := url.PathUnescape(f); err == nil {
				fields[i] = u
			}
		}
	}
	return wire.Namespace(fields), true
}

// registrations counts a coordinator's registrations of each key and
// serialises its operations on a key, so that a namespace registered again
// while its previous registration is being closed (a publisher that
// reconnects) keeps its entry: the entry is written by the first
// registration and removed by the last Close.
type registrations struct {
	mu   sync.Mutex
	keys map[string]*regKey
}

type regKey struct {
	mu    sync.Mutex // held while the entry is written or removed
	refs  int        // open registrations
	gen   int        // counts the times refs left 0
	users int        // holders and waiters of mu
	close func() error
}

func (r *registrations) lock(key string) *regKey {
	r.mu.Lock()
	if r.keys == nil {
		r.keys = map[string]*regKey{}
	}
	k := r.keys[key]
	if k == nil {
		k = &regKey{}
		r.keys[key] = k
	}
	k.users++
	r.mu.Unlock()
	k.mu.Lock()
	return k
}

func (r *registrations) unlock(key string, k *regKey) {
	k.mu.Unlock()
	r.mu.Lock()
	k.users--
	if k.users == 0 && k.refs == 0 {
		delete(r.keys, key)
	}
	r.mu.Unlock()
}

// register opens a registration of key: the first one runs add, and the
// last Close runs the remove that add's registration came with.
func (r *registrations) register(key string, add func() error, remove func() error) (Registration, error) {
	k := r.lock(key)
	defer r.unlock(key, k)
	if k.refs == 0 {
		if err := add(); err != nil {
			return nil, err
		}
		k.close = remove
		k.gen++
	}
	k.refs++
	return &registration{regs: r, key: key, gen: k.gen}, nil
}

// open returns the keys with open registrations.
func (r *registrations) open() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for key, k := range r.keys {
		if k.refs > 0 {
			keys = append(keys, key)
		}
	}
	return keys
}

// closeAll runs the remove of every key with open registrations.
func (r *registrations) closeAll() error {
	var errs []error
	for _, key := range r.open() {
		k := r.lock(key)
		if k.refs > 0 {
			k.refs = 0
			errs = append(errs, k.close())
		}
		r.unlock(key, k)
	}
	return errors.Join(errs...)
}

type registration struct {
	regs *registrations
	key  string
	gen  int
	once sync.Once
	err  error
}

func (g *registration) Close() error {
	g.once.Do(func() {
		k := g.regs.lock(g.key)
		defer g.regs.unlock(g.key, k)
		if k.refs == 0 || k.gen != g.gen {
			return // closed with the coordinator
		}
		k.refs--
		if k.refs == 0 {
			g.err = k.close()
		}
	})
	return g.err
}

// Close removes the registrations still open.
func (c *FileCoordinator) Close() error { return c.regs.closeAll() }
