package moqnative

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ALPN values offered by the server and used by the client.
const (
	// ALPNMoQT is the ALPN of MoQT over raw QUIC in drafts before -15 (§3.1).
	ALPNMoQT = "moq-00"
	// ALPNH3 is the ALPN of HTTP/3, which carries WebTransport.
	ALPNH3 = "h3"
)

// SelfSignedValidity is how long a generated certificate is valid. Browsers
// accept a certificate by its hash (WebTransport serverCertificateHashes)
// only if it is an ECDSA certificate valid for less than 14 days, so a
// Server renews the certificate it generated once less than half of this
// is left (see Server.Fingerprint).
const SelfSignedValidity = 10 * 24 * time.Hour

// timeNow is the clock of certificate generation and renewal; tests move it.
var timeNow = time.Now

// DefaultSelfSignedHosts are the names a generated certificate is valid for
// when none are given.
var DefaultSelfSignedHosts = []string{"localhost", "127.0.0.1", "::1"}

// CertKeyPair names a PEM certificate chain file and its PEM private key file.
type CertKeyPair struct {
	CertFile string
	KeyFile  string
}

// LoadCertificates reads certificate and key pairs from PEM files. The
// result can go into ServerConfig.Certificates (or a tls.Config's
// Certificates); the server picks one by SNI with CertificateChooser.
func LoadCertificates(pairs ...CertKeyPair) ([]tls.Certificate, error) {
	if len(pairs) == 0 {
		return nil, errors.New("moqnative: no certificate given")
	}
	certs := make([]tls.Certificate, 0, len(pairs))
	for _, p := range pairs {
		c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("moqnative: loading certificate %s with key %s: %w", p.CertFile, p.KeyFile, err)
		}
		if c.Leaf == nil { // LoadX509KeyPair fills Leaf; keep SupportsCertificate cheap if it ever stops
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("moqnative: parsing certificate %s: %w", p.CertFile, err)
			}
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// CertificateChooser returns a tls.Config.GetCertificate function that picks
// the first certificate the client supports (its SNI name, signature
// algorithms and curves, see tls.ClientHelloInfo.SupportsCertificate), and
// falls back to the first certificate when none matches.
func CertificateChooser(certs []tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs = append([]tls.Certificate(nil), certs...)
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(certs) == 0 {
			return nil, errors.New("moqnative: no certificate configured")
		}
		if len(certs) > 1 {
			for i := range certs {
				if hello.SupportsCertificate(&certs[i]) == nil {
					return &certs[i], nil
				}
			}
		}
		return &certs[0], nil
	}
}

// SelfSigned is a generated self-signed certificate.
type SelfSigned struct {
	// Certificate holds the DER chain, the private key and the parsed leaf.
	Certificate tls.Certificate
	// DER is the certificate in DER form; its SHA-256 is the fingerprint.
	DER []byte

	fingerprint [32]byte
	key         *ecdsa.PrivateKey
}

// GenerateSelfSigned creates an ECDSA P-256 certificate for hosts (DNS names
// or IP addresses; DefaultSelfSignedHosts when none), valid from a minute
// ago for SelfSignedValidity, so that browsers accept it by its hash.
func GenerateSelfSigned(hosts ...string) (*SelfSigned, error) {
	return generateSelfSigned(timeNow(), hosts)
}

// generateSelfSigned is GenerateSelfSigned at the time now: a renewal
// makes its certificate on the same clock that decided it was due.
func generateSelfSigned(now time.Time, hosts []string) (*SelfSigned, error) {
	if len(hosts) == 0 {
		hosts = DefaultSelfSignedHosts
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("moqnative: generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("moqnative: generating serial number: %w", err)
	}
	notBefore := now.Add(-time.Minute).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"moq-go self-signed"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("moqnative: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("moqnative: parsing generated certificate: %w", err)
	}
	return &SelfSigned{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		DER:         der,
		fingerprint: sha256.Sum256(der),
		key:         key,
	}, nil
}

// Fingerprint is the SHA-256 of the certificate's DER encoding, the value
// a browser passes in serverCertificateHashes.
func (s *SelfSigned) Fingerprint() [32]byte { return s.fingerprint }

// FingerprintHex is Fingerprint in lower-case hex.
func (s *SelfSigned) FingerprintHex() string { return hex.EncodeToString(s.fingerprint[:]) }

// renewedSelfSigned is a Server's generated certificate, replaced by a new
// one when less than half its validity is left. Without that, every
// client would fail once it expired, SelfSignedValidity after the server
// started, and it cannot be made to last longer: browsers accept a
// certificate by hash only if it is valid for less than 14 days. Renewing
// at half time rather than at expiry leaves days for a renewal that failed
// (logged) to be tried again, on the next handshake, while the old
// certificate is still good. Once renewed, only the new certificate is
// served: a client pinning the old fingerprint must fetch the new one
// (Server.Fingerprint); connections already made are not affected.
//
// current is called on every handshake, from many goroutines at once:
// the certificate in use is read without a lock, and the lock is only
// taken to renew it, once.
type renewedSelfSigned struct {
	hosts  []string
	logger *slog.Logger
	cur    atomic.Pointer[SelfSigned]
	mu     sync.Mutex // held while renewing
}

func newRenewedSelfSigned(hosts []string, logger *slog.Logger) (*renewedSelfSigned, error) {
	ss, err := GenerateSelfSigned(hosts...)
	if err != nil {
		return nil, err
	}
	r := &renewedSelfSigned{hosts: hosts, logger: logger}
	r.cur.Store(ss)
	return r, nil
}

// current returns the certificate to serve now, renewing it first when
// less than half its validity is left.
func (r *renewedSelfSigned) current() *SelfSigned {
	ss := r.cur.Load()
	if !halfSpent(ss.Certificate.Leaf, timeNow()) {
		return ss
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := timeNow()
	if ss = r.cur.Load(); !halfSpent(ss.Certificate.Leaf, now) {
		return ss // another handshake renewed it
	}
	next, err := generateSelfSigned(now, r.hosts)
	if err != nil {
		r.logger.Error("cannot renew the self-signed certificate; serving the old one until it expires, and trying again on the next handshake",
			"not_after", ss.Certificate.Leaf.NotAfter, "error", err)
		return ss
	}
	r.cur.Store(next)
	r.logger.Info("renewed the self-signed certificate; browsers need its new fingerprint (serverCertificateHashes)",
		"fingerprint", next.FingerprintHex(), "not_after", next.Certificate.Leaf.NotAfter, "old_not_after", ss.Certificate.Leaf.NotAfter)
	return next
}

// halfSpent reports whether less than half of leaf's validity is left at now.
func halfSpent(leaf *x509.Certificate, now time.Time) bool {
	return leaf.NotAfter.Sub(now) < leaf.NotAfter.Sub(leaf.NotBefore)/2
}

// WritePEM writes the certificate (mode 0644) and its PKCS #8 private key
// (mode 0600) as PEM files that LoadCertificates reads back. Each file is
// written under a temporary name in its directory and renamed over the
// path, so an existing file is replaced whole, with these modes (writing
// into it would keep its mode, and a key file once made readable to all
// would stay so), and a reader never sees half a file. A symbolic link at
// either path is replaced, not followed.
func (s *SelfSigned) WritePEM(certPath, keyPath string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return fmt.Errorf("moqnative: encoding key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.DER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := replaceFile(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("moqnative: writing certificate: %w", err)
	}
	if err := replaceFile(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("moqnative: writing private key: %w", err)
	}
	return nil
}

// replaceFile writes data to a new file in path's directory, made with
// mode 0600 (os.CreateTemp) and set to perm before anything is written,
// and renames it to path.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ClientTLS is how a client verifies the server. The zero value verifies
// the server's chain against the system roots.
type ClientTLS struct {
	// RootCAFiles are PEM files of trusted roots; they replace the system
	// pool. A self-signed server certificate can be its own root.
	RootCAFiles []string
	// ServerCertificateHashes pins the server's leaf certificate by the
	// SHA-256 of its DER encoding, as a browser's WebTransport
	// serverCertificateHashes does. When set, the chain is not verified
	// against any root: the certificate is accepted if its hash is listed
	// and the current time is within its validity. (Browsers also demand an
	// ECDSA key and a validity under 14 days; GenerateSelfSigned meets both,
	// but this client does not insist on them.)
	ServerCertificateHashes [][32]byte
	// InsecureSkipVerify accepts any certificate. For tests only.
	InsecureSkipVerify bool
	// ServerName overrides the name sent in SNI and verified in the
	// certificate; by default it is the URL's host.
	ServerName string
	// SessionCache, when set, keeps the session tickets servers send (a
	// moqnative Server sends one on every connection) so that the next
	// Dial to the same server resumes the TLS session: the server signs
	// nothing and the client verifies no signature; the key exchange is
	// still fresh (TLS 1.3 psk_dhe_ke), and there is no 0-RTT. Share one
	// cache (tls.NewLRUClientSessionCache) between the Dials of one
	// client. A resumed session keeps the certificate of the handshake
	// that made the ticket, which was verified then; the pin
	// (ServerCertificateHashes) is checked again on every connection.
	// nil: every Dial makes a full handshake.
	SessionCache tls.ClientSessionCache
}

// config builds the client tls.Config for one dial.
func (c *ClientTLS) config(serverName, alpn string, keyLog io.Writer) (*tls.Config, error) {
	if c.ServerName != "" {
		serverName = c.ServerName
	}
	conf := &tls.Config{
		ServerName:   serverName,
		NextProtos:   []string{alpn},
		MinVersion:   tls.VersionTLS13,
		KeyLogWriter: keyLog,
		// The key exchange is crypto/tls's default: Go 1.26 offers the
		// post-quantum hybrid X25519MLKEM768 (with X25519), as browsers
		// do. It protects recorded sessions from a future quantum
		// computer and costs about a third more CPU per handshake, both
		// ends together, than X25519 alone (moq-bench's BenchmarkJoin).
		ClientSessionCache: c.SessionCache,
	}
	switch {
	case len(c.ServerCertificateHashes) > 0:
		hashes := append([][32]byte(nil), c.ServerCertificateHashes...)
		// Chain verification is replaced by the hash check below, which
		// VerifyConnection runs on every handshake.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPinned(cs, hashes, time.Now())
		}
	case c.InsecureSkipVerify:
		conf.InsecureSkipVerify = true
	}
	if len(c.RootCAFiles) > 0 {
		pool := x509.NewCertPool()
		for _, f := range c.RootCAFiles {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("moqnative: reading root CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("moqnative: no PEM certificate in root CA file %s", f)
			}
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func verifyPinned(cs tls.ConnectionState, hashes [][32]byte, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("moqnative: server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	found := false
	for i := range hashes {
		if subtle.ConstantTimeCompare(sum[:], hashes[i][:]) == 1 {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("moqnative: server certificate hash %s is not pinned", hex.EncodeToString(sum[:]))
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("moqnative: pinned server certificate is not valid now (valid %s to %s)",
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// keyLog appends TLS secrets to the file SSLKEYLOGFILE names, in the NSS key
// log format Wireshark reads. An endpoint opens it once and closes it when
// the endpoint closes; writes after that fail.
type keyLog struct {
	mu sync.Mutex
	f  *os.File
}

// openKeyLog opens SSLKEYLOGFILE for appending, or returns nil when the
// variable is unset.
func openKeyLog() (*keyLog, error) {
	path := os.Getenv("SSLKEYLOGFILE")
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("moqnative: opening SSLKEYLOGFILE: %w", err)
	}
	return &keyLog{f: f}, nil
}

func (k *keyLog) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f == nil {
		return 0, os.ErrClosed
	}
	return k.f.Write(p)
}

// writer returns k as an io.Writer, or nil when there is no key log (a nil
// *keyLog in an interface would not compare equal to nil).
func (k *keyLog) writer() io.Writer {
	if k == nil {
		return nil
	}
	return k
}

func (k *keyLog) Close() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f == nil {
		return nil
	}
	err := k.f.Close()
	k.f = nil
	return err
}
