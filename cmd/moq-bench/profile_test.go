package main

import (
	"net/http"
	"net/http/httptest"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A goroutine profile (debug=1) of moq-relay at 1:1000, cut to one block
// per kind and with file names and standard-library frames shortened.
const relayGoroutines = `goroutine profile: total 10625
3402 @ 0x48f52e 0x41e2ae
#	0x8272ac	github.com/quic-go/quic-go.(*SendStream).write+0x82c	send_stream.go:317
#	0x8d6cd3	github.com/moqgo/moq/moqnative.(*quicSendStream).Write+0x13	conn.go:170
#	0x8b5aa9	github.com/moqgo/moq/moqtransport.(*outStream).writeFramed+0x809	sched.go:621
#	0x8b4524	github.com/moqgo/moq/moqtransport.(*outStream).run+0x144	sched.go:354

1001 @ 0x48f52e 0x41e2ae
#	0x8223fc	github.com/quic-go/quic-go.(*ReceiveStream).readImpl+0x45c	receive_stream.go:202
#	0x8d6a3a	github.com/moqgo/moq/moqnative.(*quicStream).Read+0x1a	conn.go:136
#	0x6401c2	bufio.(*Reader).fill+0x102	bufio.go:113
#	0x892789	github.com/moqgo/moq/moqtransport/wire.(*ControlReader).ReadMessage+0x29	reader.go:42
#	0x89c237	github.com/moqgo/moq/moqtransport.(*Session).readControl+0x37	control.go:18
#	0x8be612	github.com/moqgo/moq/moqtransport.(*Session).goFunc.func1+0x52	session.go:502

1000 @ 0x48f52e 0x46bac5 0x7fa8e5 0x496de1
#	0x7fa8e4	github.com/quic-go/quic-go.(*Conn).run+0x424	connection.go:661

756 @ 0x48f52e 0x46c952
#	0x5805dd	net.(*netFD).writeMsg+0x3d	fd_posix.go:133
#	0x837a2c	github.com/quic-go/quic-go.(*oobConn).WritePacket+0x10c	sys_conn_oob.go:248
#	0x825d0d	github.com/quic-go/quic-go.(*sendQueue).Run+0x18d	send_queue.go:90
#	0x7fb2e4	github.com/quic-go/quic-go.(*Conn).run.func3+0x24	connection.go:592

244 @ 0x48f52e 0x46bac5 0x825c90 0x7fb2e5 0x496de1
#	0x825c8f	github.com/quic-go/quic-go.(*sendQueue).Run+0x10f	send_queue.go:84
#	0x7fb2e4	github.com/quic-go/quic-go.(*Conn).run.func3+0x24	connection.go:592

2 @ 0x48f52e
#	0x4c1f2e	os/signal.signal_recv+0x2e	sigqueue.go:152

`

func TestGoroutineOwners(t *testing.T) {
	owners, total := goroutineOwners(relayGoroutines)
	want := []ownerCount{
		{"github.com/moqgo/moq/moqtransport.(*outStream).writeFramed", 3402},
		{"github.com/moqgo/moq/moqtransport.(*Session).readControl", 1001},
		{"github.com/quic-go/quic-go.(*Conn).run", 1000},
		{"github.com/quic-go/quic-go.(*Conn).run.func3", 1000}, // the sender, waiting or writing
		{"(standard library)", 2},
	}
	if !slices.Equal(owners, want) {
		t.Errorf("owners:\n got %v\nwant %v", owners, want)
	}
	if total != 3402+1001+1000+756+244+2 {
		t.Errorf("total %d", total)
	}
	if o, n := goroutineOwners(""); len(o) != 0 || n != 0 {
		t.Errorf("empty profile: %v, %d", o, n)
	}
}

// TestRelayProfileFiles: --profile takes the CPU, mutex and block profiles
// over the same seconds, then the live heap and the goroutines, from a
// pprof server (here this process's own), and tells an empty profile from
// one with samples.
func TestRelayProfileFiles(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	rp := startProfile(t.Context(), srv.URL, dir, "run", time.Now(), time.Second)
	<-rp.done
	if rp.err != nil {
		t.Fatal(rp.err)
	}
	var names []string
	for _, f := range rp.files {
		st, err := os.Stat(f)
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v, %d bytes", f, err, st.Size())
		}
		names = append(names, filepath.Base(f))
	}
	want := []string{"run-cpu.pprof", "run-mutex.pprof", "run-block.pprof", "run-heap.pprof", "run-goroutines.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	empty := "Duration: 1s, Total samples = 0 \nShowing nodes accounting for 0, 0% of 0 total\n"
	full := "Duration: 10s, Total samples = 2.5s (25.00%)\nShowing nodes accounting for 2.5s, 100% of 2.5s total\n"
	if !noSamples([]byte(empty)) || noSamples([]byte(full)) {
		t.Error("noSamples does not tell an empty profile from a full one")
	}
	if h := unsampledHint("x/run-mutex.pprof"); !strings.Contains(h, "--pprof-mutex-fraction") {
		t.Errorf("mutex hint %q", h)
	}
	if h := unsampledHint("x/run-cpu.pprof"); h != "" {
		t.Errorf("cpu hint %q", h)
	}
}
