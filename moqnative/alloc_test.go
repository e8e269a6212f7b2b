package moqnative

import (
	"fmt"
	"io"
	"testing"

	"github.com/quic-go/quic-go"
)

// TestReadWriteAllocs checks that the adapters add no allocation to
// successful reads and writes: they cost what the library under them
// costs (nothing for quic-go; one allocation per call for webtransport-go
// v0.13.0, whose Read and Write call errors.As on every call).
func TestReadWriteAllocs(t *testing.T) {
	for _, scheme := range []string{"moqt", "https"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := testCtx(t)
			srv := startServer(t, ServerConfig{})
			d := dial(t, ctx, fmt.Sprintf("%s://%s/", scheme, srv.Addr()), pinned(srv))
			in := accept(t, ctx, srv)
			w, err := d.Conn.OpenUniStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, "h")
			r, err := in.Conn.AcceptUniStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mustRead(t, r, "h")

			var rawW io.Writer
			var rawR io.Reader
			switch w := w.(type) {
			case *quicSendStream:
				rawW, rawR = (*quic.SendStream)(w), (*quic.ReceiveStream)(r.(*quicReceiveStream))
			case *wtSendStream:
				rawW, rawR = w.s, r.(*wtReceiveStream).s
			}
			buf := make([]byte, 16)
			write := func(w io.Writer) func() {
				return func() {
					if _, err := w.Write(buf); err != nil {
						t.Fatal(err)
					}
				}
			}
			read := func(r io.Reader) func() {
				return func() {
					if _, err := io.ReadFull(r, buf); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got, lib := minAllocs(write(w)), minAllocs(write(rawW)); got != lib {
				t.Errorf("allocations per Write: %v, the library's alone %v", got, lib)
			}
			if got, lib := minAllocs(read(r)), minAllocs(read(rawR)); got != lib {
				t.Errorf("allocations per Read: %v, the library's alone %v", got, lib)
			}
		})
	}
}

// minAllocs is f's allocations per call, the least of several
// measurements. testing.AllocsPerRun counts every goroutine's allocations,
// and quic-go's connection goroutines (sending, acknowledging, timers) run
// while it measures: what they allocate only adds to a measurement, and on
// a loaded machine more of it can fall inside one. An allocation made by f
// itself is in every measurement.
func minAllocs(f func()) float64 {
	least := testing.AllocsPerRun(100, f)
	for range 4 {
		least = min(least, testing.AllocsPerRun(100, f))
	}
	return least
}
