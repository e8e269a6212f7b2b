package testclient

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	names := func(scs []Scenario) string {
		var out []string
		for _, sc := range scs {
			out = append(out, sc.Name)
		}
		return strings.Join(out, ",")
	}
	all, err := Select(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(all); !strings.HasPrefix(got, "setup-only,announce-only,subscribe-error,announce-subscribe,subscribe-before-announce,publish-namespace-done,") ||
		strings.Contains(got, "goaway") {
		t.Errorf("default tests: %s", got)
	}
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"all"}, names(all)},
		{[]string{""}, names(all)},
		{[]string{"fetch", " setup-only "}, "fetch,setup-only"},
		{[]string{"goaway"}, "goaway"},
		{[]string{"all", "goaway"}, names(all) + ",goaway"},
	} {
		got, err := Select(c.in)
		if err != nil || names(got) != c.want {
			t.Errorf("Select(%q) = %s, %v; want %s", c.in, names(got), err, c.want)
		}
	}
	if _, err := Select([]string{"setup-only", "nope"}); err == nil || !strings.Contains(err.Error(), `unknown test "nope"`) {
		t.Errorf("unknown test: %v", err)
	}
}

func TestTAPWriter(t *testing.T) {
	results := []Result{
		{Name: "a", Duration: 1500 * time.Microsecond},
		{Name: "b", Skip: "not\nhere", Duration: 2 * time.Millisecond},
		{Name: "c", Err: errors.New("first \"line\"\nsecond\tline"), Duration: 3 * time.Millisecond},
	}
	for _, c := range []struct {
		verbose bool
		message string
	}{
		{false, `"first \"line\""`},
		{true, `"first \"line\"\nsecond\tline"`},
	} {
		var b bytes.Buffer
		tw := &tapWriter{w: &b, verbose: c.verbose}
		tw.header("moq-test-client 1.0", "moqt://r/", len(results))
		for i, r := range results {
			tw.result(i+1, r)
		}
		want := "TAP version 14\n# moq-test-client 1.0\n# Relay: moqt://r/\n1..3\n" +
			"ok 1 - a\n  ---\n  duration_ms: 1\n  ...\n" +
			"ok 2 - b # SKIP not here\n  ---\n  duration_ms: 2\n  ...\n" +
			"not ok 3 - c\n  ---\n  duration_ms: 3\n  message: " + c.message + "\n  ...\n"
		if b.String() != want {
			t.Errorf("verbose=%v:\n%s\nwant:\n%s", c.verbose, b.String(), want)
		}
	}
}
