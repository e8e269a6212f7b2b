package relay_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// logBuffer collects log lines written concurrently.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines parses the JSON lines written so far.
func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func (l *logBuffer) count(t *testing.T, msg string) int {
	n := 0
	for _, m := range l.lines(t) {
		if m["msg"] == msg {
			n++
		}
	}
	return n
}

// TestLogsCarrySessionAndRequest: every line the relay and its sessions
// log about a session carries the session's id ("session"), one id per
// session, and the lines about a request carry its ID ("request").
func TestLogsCarrySessionAndRequest(t *testing.T) {
	var logs logBuffer
	e := startRelayWith(t, "moqt", relay.Config{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ns := wire.Namespace{"logs"}
	pub, tr, _ := e.publisher("/", ns, "t")
	ctx := ctxFor(t)
	sub := e.connect("/", nil)
	s, err := sub.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(ctx, wire.Namespace{"nobody"}, "t", moqtransport.SubscribeOptions{}); err == nil {
		t.Fatal("a SUBSCRIBE for a namespace nobody publishes succeeded")
	}
	write(t, tr, 0, 2, 3)
	r := s.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	for n := 0; n < 6; {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == moqtransport.EventObject {
			n++
		}
	}
	r.Close()
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	_ = sub.Close()
	_ = pub.Close()
	// The relay sees the sessions end after we close them: wait for its
	// lines (bounded).
	for deadline := time.Now().Add(10 * time.Second); logs.count(t, "session ended") < 2 || logs.count(t, "upstream unsubscribed") < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not log both sessions' end and the upstream unsubscribe:\n%s", logs.b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	lines := logs.lines(t)
	started := map[any]bool{}
	for _, m := range lines {
		if m["msg"] == "session started" {
			started[m["session"]] = true
		}
	}
	if len(started) != 2 || started[nil] {
		t.Fatalf("want 2 sessions started with distinct ids, got %v", started)
	}
	withRequest := map[string]int{"namespace published": 0, "upstream subscribed": 0, "upstream unsubscribed": 0}
	fromSession := 0
	for _, m := range lines {
		id, ok := m["session"]
		if !ok || !started[id] {
			t.Errorf("a line without a known session id: %v", m)
			continue
		}
		msg, _ := m["msg"].(string)
		if _, ok := withRequest[msg]; ok {
			if _, ok := m["request"]; !ok {
				t.Errorf("a request line without its request ID: %v", m)
			}
			withRequest[msg]++
		}
		if msg == "received" || msg == "sent" {
			fromSession++ // a line the session itself wrote (moqtransport)
		}
	}
	for msg, n := range withRequest {
		if n == 0 {
			t.Errorf("no %q line", msg)
		}
	}
	if fromSession == 0 {
		t.Error("no line from the sessions themselves (control messages at debug level)")
	}
	t.Logf("%d lines, %d from moqtransport", len(lines), fromSession)
}
