//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package relay

import (
	"context"
	"errors"
	"os"
)

func lockFile(context.Context, *os.File, bool) error {
	return errors.New("the file coordinator needs flock, which this system lacks")
}

func unlockFile(*os.File) {}
