package version

import (
	"strings"
	"testing"
)

func TestDraftAndNumberAgree(t *testing.T) {
	// draft-ietf-moq-transport-NN is version 0xff000000 + NN.
	const prefix = "draft-ietf-moq-transport-"
	if !strings.HasPrefix(Draft, prefix) {
		t.Fatalf("Draft = %q, want prefix %q", Draft, prefix)
	}
	if got, want := Draft[len(prefix):], "14"; got != want {
		t.Fatalf("Draft number = %q, want %q", got, want)
	}
	if Number != 0xff000000+14 {
		t.Fatalf("Number = %#x, want %#x", Number, uint64(0xff000000+14))
	}
}

func TestVersionNotEmpty(t *testing.T) {
	if Version == "" {
		t.Fatal("Version is empty")
	}
}

func TestString(t *testing.T) {
	got := String("moq-relay")
	want := "moq-relay " + Version + " (moq-go, draft-ietf-moq-transport-14)"
	if got != want {
		t.Fatalf("String(%q) = %q, want %q", "moq-relay", got, want)
	}
}

func TestStringOverride(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "9.9.9"
	if got, want := String("moq-pub"), "moq-pub 9.9.9 (moq-go, draft-ietf-moq-transport-14)"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}
