package moqtransport

import (
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

func TestNewNamespaceCopiesFields(t *testing.T) {
	fields := []string{"live", "cam1"}
	ns := NewNamespace(fields...)
	if !ns.Equal(wire.Namespace{"live", "cam1"}) {
		t.Fatalf("NewNamespace = %v, want (live, cam1)", ns)
	}
	fields[0] = "changed"
	if ns[0] != "live" {
		t.Fatalf("NewNamespace aliases its argument: %v", ns)
	}
	if err := NewNamespace().Validate(); err == nil {
		t.Fatal("an empty namespace validates; the draft requires 1 to 32 fields")
	}
}
