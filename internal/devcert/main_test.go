package main

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moqgo/moq/moqnative"
)

func TestDevCert(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "sub", "c.crt"), filepath.Join(dir, "k.key")
	var out strings.Builder
	if err := run([]string{"-cert", cert, "-key", key, "example.test", "10.0.0.1"}, &out); err != nil {
		t.Fatal(err)
	}
	certs, err := moqnative.LoadCertificates(moqnative.CertKeyPair{CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	leaf := certs[0].Leaf
	if leaf == nil || leaf.VerifyHostname("example.test") != nil || leaf.VerifyHostname("10.0.0.1") != nil {
		t.Fatalf("the certificate is not for the hosts given: %+v", leaf)
	}
	fp := sha256.Sum256(certs[0].Certificate[0])
	if !strings.Contains(out.String(), "SHA-256 fingerprint: "+hex.EncodeToString(fp[:])) {
		t.Errorf("output:\n%s", out.String())
	}
	if err := run([]string{"-nope"}, &out); err == nil {
		t.Error("an unknown flag was accepted")
	}
}
