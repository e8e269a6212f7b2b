package wire

import (
	"strings"
)

// Namespace is a track namespace or namespace prefix: an ordered tuple of 1
// to 32 byte strings (§2.4.1). Fields are compared as raw bytes; Go strings
// hold any bytes, not only UTF-8.
type Namespace []string

// ParseNamespacePath splits a slash-separated path ("a/b/c", a leading slash
// is ignored) into a namespace. It does not check the draft's limits.
func ParseNamespacePath(path string) Namespace {
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return nil
	}
	return Namespace(strings.Split(path, "/"))
}

// String joins the fields with "/".
func (ns Namespace) String() string { return strings.Join(ns, "/") }

// Equal reports whether ns and o have the same fields.
func (ns Namespace) Equal(o Namespace) bool {
	if len(ns) != len(o) {
		return false
	}
	for i := range ns {
		if ns[i] != o[i] {
			return false
		}
	}
	return true
}

// HasPrefix reports whether prefix's fields match the first fields of ns,
// field by field and exactly (§8.4): (foo) is a prefix of (foo, bar), but
// (foo) is not a prefix of (foobar).
func (ns Namespace) HasPrefix(prefix Namespace) bool {
	if len(prefix) > len(ns) {
		return false
	}
	for i := range prefix {
		if ns[i] != prefix[i] {
			return false
		}
	}
	return true
}

// byteLen is the sum of the fields' lengths, as counted by the full track
// name limit.
func (ns Namespace) byteLen() int {
	n := 0
	for _, f := range ns {
		n += len(f)
	}
	return n
}

// Validate checks the draft-14 limits on a namespace: 1 to 32 fields and at
// most 4096 bytes of fields.
func (ns Namespace) Validate() error { return validateTrackName(ns, "") }

// FullTrackName is a namespace plus a track name.
type FullTrackName struct {
	Namespace Namespace
	Name      string
}

func (f FullTrackName) String() string { return f.Namespace.String() + "/" + f.Name }

// Validate checks the namespace's field count and the 4096-byte limit on the
// namespace fields plus the name.
func (f FullTrackName) Validate() error { return validateTrackName(f.Namespace, f.Name) }

func validateTrackName(ns Namespace, name string) error {
	if len(ns) == 0 || len(ns) > MaxNamespaceFields {
		return violation("track namespace has %d fields, want 1 to %d", len(ns), MaxNamespaceFields)
	}
	if l := ns.byteLen() + len(name); l > MaxFullTrackNameLen {
		return violation("full track name is %d bytes, limit %d", l, MaxFullTrackNameLen)
	}
	return nil
}

func (w *builder) namespace(ns Namespace) {
	if err := ns.Validate(); err != nil {
		w.fail(err)
		return
	}
	w.varint("namespace field count", uint64(len(ns)))
	for _, f := range ns {
		w.string("namespace field", f, MaxFullTrackNameLen)
	}
}

// fullTrackName writes a namespace followed by a track name.
func (w *builder) fullTrackName(ns Namespace, name string) {
	if err := validateTrackName(ns, name); err != nil {
		w.fail(err)
		return
	}
	w.namespace(ns)
	w.string("track name", name, MaxFullTrackNameLen)
}

// namespace reads a tuple of 1 to 32 fields. budget is the number of bytes
// the fields may take in all (the full track name limit).
func (p *parser) namespace() Namespace {
	n := p.varint()
	if p.err != nil {
		return nil
	}
	if n == 0 || n > MaxNamespaceFields {
		p.fail(violation("track namespace has %d fields, want 1 to %d", n, MaxNamespaceFields))
		return nil
	}
	ns := make(Namespace, 0, n)
	total := 0
	for range n {
		f := p.lengthPrefixed("namespace field", MaxFullTrackNameLen)
		if p.err != nil {
			return nil
		}
		total += len(f)
		if total > MaxFullTrackNameLen {
			p.fail(violation("track namespace is over %d bytes", MaxFullTrackNameLen))
			return nil
		}
		ns = append(ns, string(f))
	}
	return ns
}

func (p *parser) fullTrackName() (Namespace, string) {
	ns := p.namespace()
	if p.err != nil {
		return nil, ""
	}
	budget := uint64(MaxFullTrackNameLen - ns.byteLen())
	l := p.varint()
	if p.err != nil {
		return nil, ""
	}
	if l > budget {
		p.fail(violation("full track name is %d bytes, limit %d", uint64(ns.byteLen())+l, MaxFullTrackNameLen))
		return nil, ""
	}
	return ns, string(p.bytes(l))
}
