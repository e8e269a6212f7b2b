package wire

import (
	"strings"
	"testing"
)

// TestExtensionRules: draft-14 §11's rules on an object's extension
// headers, which make its track malformed.
func TestExtensionRules(t *testing.T) {
	ext := func(pairs ...KeyValue) Extensions {
		e, err := BuildExtensions(pairs...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	immutable := func(inner []byte) KeyValue { return KeyValue{Type: ExtImmutable, Bytes: inner} }
	innerOK, _ := BuildExtensions(KeyValue{Type: 0x20, Value: 5}, KeyValue{Type: 0x21, Bytes: []byte("x")})
	innerNested, _ := BuildExtensions(immutable(nil))
	loc := Location{Group: 5, Object: 3}
	for _, c := range []struct {
		name string
		e    Extensions
		want string // "" for none
	}{
		{"none", nil, ""},
		{"gaps within the IDs", ext(KeyValue{Type: ExtPriorGroupIDGap, Value: 5}, KeyValue{Type: ExtPriorObjectIDGap, Value: 3}), ""},
		{"immutable pairs", ext(immutable(innerOK)), ""},
		{"two group gaps", ext(KeyValue{Type: ExtPriorGroupIDGap, Value: 1}, KeyValue{Type: ExtPriorGroupIDGap, Value: 1}), "more than one Prior Group ID Gap"},
		{"group gap past the group ID", ext(KeyValue{Type: ExtPriorGroupIDGap, Value: 6}), "larger than its group ID"},
		{"two object gaps", ext(KeyValue{Type: ExtPriorObjectIDGap, Value: 1}, KeyValue{Type: ExtPriorObjectIDGap, Value: 2}), "more than one Prior Object ID Gap"},
		{"object gap past the object ID", ext(KeyValue{Type: ExtPriorObjectIDGap, Value: 4}), "larger than its object ID"},
		{"immutable nested", ext(immutable(innerNested)), "nested"},
		{"immutable half a varint", ext(immutable([]byte{0x40})), "not key-value pairs"},
		{"immutable value past its end", ext(immutable([]byte{0x21, 0x05, 'a'})), "not key-value pairs"},
	} {
		err := c.e.CheckRules(loc)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want none", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
