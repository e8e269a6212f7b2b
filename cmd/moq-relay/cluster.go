package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/relay"
)

// clusterConfig holds the flags of relay clustering: the coordinator that
// finds the relay serving a namespace, this relay's URL for the others,
// and how this relay verifies the others when it connects to them.
type clusterConfig struct {
	node             string
	apiURL           string
	apiToken         string
	apiTTL           time.Duration
	coordinatorFile  string
	tlsRoots         []string
	tlsDisableVerify bool
	clusterKey       string
}

func (c *clusterConfig) addFlags(f *pflag.FlagSet) {
	disableVerify, _ := strconv.ParseBool(os.Getenv("TLS_DISABLE_VERIFY"))
	c.apiTTL = api.DefaultTTL
	f.StringVar(&c.node, "node", "", "this relay's URL for the other relays of the cluster (moqt:// or https://); default https://<bind address>, localhost for an unspecified address")
	f.StringVar(&c.apiURL, "api-url", "", "find and register namespaces with the moq-api registry at this URL (http://host:port)")
	f.StringVar(&c.apiToken, "api-token", os.Getenv("MOQ_API_TOKEN"), "the moq-api registry's token, sent with every request (env MOQ_API_TOKEN, which ps does not show)")
	f.Var((*secondsValue)(&c.apiTTL), "api-ttl", "the registry's TTL, moq-api's --ttl: registrations are refreshed every half of it (seconds, or a duration such as 10m); a registry that reports a shorter TTL (this module's moq-api does, moq-rs's reports none) is refreshed every half of its TTL instead, with a warning")
	f.StringVar(&c.coordinatorFile, "coordinator-file", "", "find and register namespaces in this JSON file shared by the relays of one host (moq-rs: "+relay.DefaultCoordinatorFile+")")
	f.StringArrayVar(&c.tlsRoots, "tls-root", nil, "root CA file (PEM) to verify other relays with, instead of the system roots; repeatable")
	f.StringVar(&c.clusterKey, "cluster-key", "", "a file every relay of the cluster holds: an Ed25519 private key (PEM, PKCS #8) or an HMAC secret (raw bytes, at least 32); relays sign short-lived peer tokens with it to prove they are relays (needed with --auth-key and a coordinator)")
	f.BoolVar(&c.tlsDisableVerify, "tls-disable-verify", disableVerify, "do not verify other relays' certificates (env TLS_DISABLE_VERIFY)")
}

// apply sets the relay's Coordinator, Node and Dial when a coordinator is
// configured; closeFn removes what is still registered and must run after
// the relay has stopped.
func (c *clusterConfig) apply(rc *relay.Config, addr net.Addr, logger *slog.Logger) (closeFn func(), err error) {
	nop := func() {}
	if c.apiURL != "" && c.coordinatorFile != "" {
		return nop, errors.New("--api-url and --coordinator-file: choose one coordinator")
	}
	if c.apiURL == "" && c.coordinatorFile == "" {
		if c.node != "" {
			logger.Warn("--node has no effect without --api-url or --coordinator-file")
		}
		if c.apiToken != "" {
			logger.Warn("--api-token (or MOQ_API_TOKEN) has no effect without --api-url")
		}
		if c.clusterKey != "" {
			return nop, errors.New("--cluster-key needs a coordinator (--api-url or --coordinator-file)")
		}
		return nop, nil
	}
	if c.clusterKey != "" {
		key, err := loadClusterKey(c.clusterKey)
		if err != nil {
			return nop, err
		}
		rc.ClusterKey = key
	}
	if c.apiURL != "" && c.apiTTL < 2*time.Second {
		return nop, fmt.Errorf("--api-ttl %v: want at least 2s (the relay refreshes its registrations every TTL/2)", c.apiTTL)
	}
	node := c.node
	if node == "" {
		node = defaultNode(addr)
	} else if !strings.HasPrefix(node, "moqt://") && !strings.HasPrefix(node, "https://") {
		return nop, fmt.Errorf("--node %q: want moqt://host:port or https://host:port", node)
	}
	tls := moqnative.ClientTLS{RootCAFiles: c.tlsRoots, InsecureSkipVerify: c.tlsDisableVerify}
	for _, f := range c.tlsRoots {
		b, err := os.ReadFile(f)
		if err != nil {
			return nop, fmt.Errorf("--tls-root: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return nop, fmt.Errorf("--tls-root %s: no PEM certificate", f)
		}
	}
	var coord interface {
		relay.Coordinator
		Close() error
	}
	if c.apiURL != "" {
		if c.apiToken == "" {
			logger.Warn("no --api-token (or MOQ_API_TOKEN): a registry with a token will refuse this relay")
		}
		coord, err = relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: c.apiURL, Node: node, Token: c.apiToken, TTL: c.apiTTL, Logger: logger})
	} else {
		coord, err = relay.NewFileCoordinator(relay.FileCoordinatorConfig{Path: c.coordinatorFile, Node: node, Logger: logger})
	}
	if err != nil {
		return nop, err
	}
	if c.apiURL != "" {
		// The refresh is every api_ttl/2 only with a registry that does
		// not report its own TTL (moq-rs's moq-api).
		logger.Info("clustering through the moq-api registry", "api", c.apiURL, "node", node, "api_ttl", c.apiTTL)
	} else {
		logger.Info("clustering through a coordinator file", "file", c.coordinatorFile, "node", node)
	}
	rc.Coordinator, rc.Node, rc.Dial = coord, node, dialRelay(tls, logger)
	return func() {
		if err := coord.Close(); err != nil {
			logger.Warn("removing registrations from the coordinator", "err", err)
		}
	}, nil
}

// defaultNode is https://<the address the relay listens on>, as moq-rs's
// https://{bind}, with localhost for an unspecified address.
func defaultNode(addr net.Addr) string {
	host, port := "localhost", "443"
	if ua, ok := addr.(*net.UDPAddr); ok {
		port = strconv.Itoa(ua.Port)
		if !ua.IP.IsUnspecified() {
			host = ua.IP.String()
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

// dialRelay connects to another relay: moqnative.Dial by the URL's scheme,
// then MoQT setup with the relay's configuration; the connection closes
// when the session ends.
func dialRelay(tls moqnative.ClientTLS, logger *slog.Logger) relay.DialFunc {
	return func(ctx context.Context, url string, cfg *moqtransport.Config) (*moqtransport.Session, error) {
		d, err := moqnative.Dial(ctx, url, moqnative.ClientConfig{TLS: tls, Logger: logger})
		if err != nil {
			return nil, err
		}
		c := *cfg
		c.Path, c.Authority = d.Path, d.Authority // sent over raw QUIC only
		s, err := moqtransport.Connect(ctx, d.Conn, &c)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		go func() {
			<-s.Done()
			_ = d.Close()
		}()
		return s, nil
	}
}

// secondsValue is a duration flag that also takes plain seconds, as
// moq-rs's --api-ttl SECS does.
type secondsValue time.Duration

func (v *secondsValue) String() string { return time.Duration(*v).String() }
func (v *secondsValue) Type() string   { return "seconds" }
func (v *secondsValue) Set(s string) error {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		*v = secondsValue(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want seconds (600) or a duration (10m)")
	}
	*v = secondsValue(d)
	return nil
}

// loadClusterKey reads an Ed25519 private key (PEM, PKCS #8) or an HMAC
// secret.
func loadClusterKey(path string) (*relay.ClusterKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--cluster-key: %w", err)
	}
	if block, _ := pem.Decode(b); block != nil {
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key %s: %w", path, err)
		}
		priv, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("--cluster-key %s: a %T, want an Ed25519 private key", path, key)
		}
		return relay.NewEd25519ClusterKey(priv)
	}
	k, err := relay.NewHMACClusterKey([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return nil, fmt.Errorf("--cluster-key %s: %w", path, err)
	}
	return k, nil
}
