//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package relay

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// lockFile takes a flock on f, exclusive or shared, waiting until ctx
// ends. The lock is on the open file, so two opens in one process exclude
// each other as two processes do.
func lockFile(ctx context.Context, f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func unlockFile(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
