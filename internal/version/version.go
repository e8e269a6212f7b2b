// Package version holds the build version of the moq-go binaries and the
// MoQT draft they speak.
package version

import "fmt"

// Version is the moq-go release. Release builds override it with
//
//	go build -ldflags "-X github.com/moqgo/moq/internal/version.Version=1.2.3"
var Version = "0.1.0-dev"

// Draft is the MoQT draft this implementation follows.
const Draft = "draft-ietf-moq-transport-14"

// Number is the MoQT version number negotiated in CLIENT_SETUP and
// SERVER_SETUP for Draft.
const Number uint64 = 0xff00000e

// String returns the line a binary prints for --version, for example
// "moq-relay 0.1.0-dev (moq-go, draft-ietf-moq-transport-14)".
func String(binary string) string {
	return fmt.Sprintf("%s %s (moq-go, %s)", binary, Version, Draft)
}
