// Command devcert writes a self-signed certificate and its private key for
// local development (dev/cert runs it): ECDSA P-256, valid for 10 days
// (moqnative.GenerateSelfSigned), for the host names and IP addresses
// given (default localhost, 127.0.0.1 and ::1). It prints the
// certificate's SHA-256 fingerprint, which clients can pin with
// --fingerprint and browsers with serverCertificateHashes.
//
//	go run ./internal/devcert [-cert dev/localhost.crt] [-key dev/localhost.key] [HOST...]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moqgo/moq/moqnative"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "devcert: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devcert", flag.ContinueOnError)
	certPath := fs.String("cert", "dev/localhost.crt", "where to write the certificate (PEM)")
	keyPath := fs.String("key", "dev/localhost.key", "where to write the private key (PEM, mode 0600)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hosts := fs.Args()
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	ss, err := moqnative.GenerateSelfSigned(hosts...)
	if err != nil {
		return err
	}
	for _, p := range []string{*certPath, *keyPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
	}
	if err := ss.WritePEM(*certPath, *keyPath); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "wrote %s and %s for %s, valid until %s\nSHA-256 fingerprint: %s\n",
		*certPath, *keyPath, strings.Join(hosts, ", "),
		ss.Certificate.Leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"), ss.FingerprintHex())
	return err
}
