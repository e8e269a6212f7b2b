package moqnative

import (
	"bytes"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
)

// TestSocketBufferWarning: a socket whose buffers are below what quic-go
// wants gets one warning that names the sysctls to raise; the check reads
// the sizes the kernel reports.
func TestSocketBufferWarning(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket inspection is Linux-only")
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	// Far below the 7 MiB quic-go wants, and below any kernel's cap.
	if err := udp.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	if err := udp.SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	info := checkSocket(udp, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if info.ReceiveBuffer <= 0 || info.ReceiveBuffer >= WantedSocketBuffer || info.SendBuffer <= 0 || info.SendBuffer >= WantedSocketBuffer {
		t.Fatalf("buffers %d/%d, want the small sizes set (0 < size < %d)", info.ReceiveBuffer, info.SendBuffer, WantedSocketBuffer)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "net.core.rmem_max") || !strings.Contains(out, "net.core.wmem_max") {
		t.Fatalf("want one warning naming net.core.rmem_max and wmem_max, got:\n%s", out)
	}
}

// TestServerSocket: the server reports the socket quic-go set up, and warns
// exactly when its buffers are below what quic-go wants.
func TestServerSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket inspection is Linux-only")
	}
	var logs bytes.Buffer
	srv, err := Listen("127.0.0.1:0", ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	info := srv.Socket()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if info.ReceiveBuffer <= 0 || info.SendBuffer <= 0 {
		t.Fatalf("socket buffers not read: %+v", info)
	}
	if warned := strings.Contains(logs.String(), "net.core.rmem_max"); warned != info.SmallBuffers() {
		t.Fatalf("buffers %+v (small: %v) but warned %v:\n%s", info, info.SmallBuffers(), warned, logs.String())
	}
	t.Logf("socket: %+v", info)
}
