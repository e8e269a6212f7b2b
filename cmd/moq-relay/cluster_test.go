package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/api/redistest"
	"github.com/moqgo/moq/api/server"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

func TestClusterFlags(t *testing.T) {
	t.Setenv("MOQ_API_TOKEN", "")
	f := newRootCommand(nil).Flags()
	for flag, def := range map[string]string{"node": "", "api-url": "", "api-token": "", "api-ttl": "10m0s", "coordinator-file": "", "tls-root": "[]", "tls-disable-verify": "false", "cluster-key": ""} {
		if got := f.Lookup(flag); got == nil || got.DefValue != def {
			t.Errorf("--%s: %v, want default %q", flag, got, def)
		}
	}
	var v secondsValue
	for in, want := range map[string]time.Duration{"600": 600 * time.Second, "90s": 90 * time.Second, "10m": 10 * time.Minute} {
		if err := v.Set(in); err != nil || time.Duration(v) != want {
			t.Errorf("--api-ttl %s: %v, %v", in, time.Duration(v), err)
		}
	}
	t.Setenv("MOQ_API_TOKEN", "from-env")
	if got := newRootCommand(nil).Flags().Lookup("api-token").DefValue; got != "from-env" {
		t.Errorf("--api-token defaults to %q with MOQ_API_TOKEN set", got)
	}
	if err := v.Set("soon"); err == nil {
		t.Error("--api-ttl soon was accepted")
	}
	for _, args := range [][]string{
		{"--api-url", "http://127.0.0.1:1", "--coordinator-file", "x.json"},
		{"--coordinator-file", "x.json", "--node", "ftp://x"},
		{"--api-url", "redis://x"},
		{"--api-url", "http://127.0.0.1:1", "--api-ttl", "0"},
		{"--api-url", "http://127.0.0.1:1", "--api-ttl", "1s"}, // refreshed every 500 ms
		{"--coordinator-file", "x.json", "--tls-root", "/nonexistent.pem"},
		{"--cluster-key", "/nonexistent.key"},
		{"--coordinator-file", "x.json", "--cluster-key", "/nonexistent.key"},
		{"--auth-issuer", "x"},
	} {
		if _, _, err := execute(t, append([]string{"--bind", "127.0.0.1:0"}, args...)...); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
	if got := defaultNode(&net.UDPAddr{IP: net.IPv6unspecified, Port: 4443}); got != "https://localhost:4443" {
		t.Errorf("default node %q", got)
	}
	if got := defaultNode(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}); got != "https://127.0.0.1:1" {
		t.Errorf("default node %q", got)
	}
}

// startRelay runs moq-relay with the cluster flags and returns its address
// and fingerprint; it stops when the test ends.
func startRelay(t *testing.T, cluster clusterConfig) (net.Addr, [32]byte) {
	t.Helper()
	r := startRelayConfig(t, config{cluster: cluster})
	return r.addr, r.fp
}

func connectTo(t *testing.T, ctx context.Context, url string, fp [32]byte, h *moqtransport.Tracks) *moqtransport.Session {
	t.Helper()
	return connectWithParams(t, ctx, url, fp, h, nil)
}

func connectWithParams(t *testing.T, ctx context.Context, url string, fp [32]byte, h *moqtransport.Tracks, params wire.Parameters) *moqtransport.Session {
	t.Helper()
	d, err := moqnative.Dial(ctx, url, moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Handler: handlerOf(h), Path: d.Path, Authority: d.Authority, SetupParams: params})
	if err != nil {
		_ = d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = d.Close()
	})
	return s
}

// TestRelaysCluster runs two moq-relays on a moq-api registry, and two on a
// coordinator file: a track published on one reaches a subscriber of the
// other, and the registration leaves with the publisher.
func TestRelaysCluster(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	const token = "cluster-secret"
	hs := httptest.NewServer(server.New(server.Config{Redis: rdb, Token: token}))
	client, err := api.NewClient(hs.URL, nil, api.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		hs.Close()
		_ = rdb.Close()
	})
	file := filepath.Join(t.TempDir(), "coordinator.json")
	for _, c := range []struct {
		name    string
		cluster clusterConfig
	}{
		{"api", clusterConfig{apiURL: hs.URL, apiToken: token, apiTTL: time.Minute, tlsDisableVerify: true}},
		{"file", clusterConfig{coordinatorFile: file, tlsDisableVerify: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, fpA := startRelay(t, c.cluster)
			b, fpB := startRelay(t, c.cluster)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tracks := &moqtransport.Tracks{}
			ns := wire.Namespace{"clock"}
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "now"}, moqtransport.TrackConfig{})
			tracks.Add(tr)
			pub := connectTo(t, ctx, fmt.Sprintf("moqt://%s/", a), fpA, tracks)
			if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
				t.Fatal(err)
			}
			sub, err := connectTo(t, ctx, fmt.Sprintf("https://%s/", b), fpB, nil).Subscribe(ctx, ns, "now", moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatalf("a subscriber on the other relay: %v", err)
			}
			w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
			if err := w.WriteObject(0, []byte("12:00:00"), nil); err != nil {
				t.Fatal(err)
			}
			rd := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
			defer rd.Close()
			ev, err := rd.Next(ctx)
			if err != nil || ev.Kind != moqtransport.EventObject || string(ev.Object.Payload) != "12:00:00" {
				t.Fatalf("through two relays: %+v, %v", ev, err)
			}
			// The node URL is https://<bind address> by default.
			node := "https://" + a.String()
			lookup := func() (string, error) {
				if c.name == "api" {
					o, err := client.GetOrigin(ctx, relay.RegistryKey("", ns))
					return o.URL, err
				}
				fc, err := relay.NewFileCoordinator(relay.FileCoordinatorConfig{Path: file, Node: "moqt://reader"})
				if err != nil {
					return "", err
				}
				return fc.Lookup(ctx, "", ns)
			}
			if got, err := lookup(); err != nil || got != node {
				t.Errorf("the coordinator has %q, %v; want %q", got, err, node)
			}
			if c.name == "api" {
				// A relay without the registry's token registers
				// nothing: its publisher is refused, and told why.
				bad := c.cluster
				bad.apiToken = "wrong"
				x, fpX := startRelay(t, bad)
				other := wire.Namespace{"other"}
				_, err := connectTo(t, ctx, fmt.Sprintf("moqt://%s/", x), fpX, nil).PublishNamespace(ctx, other, nil)
				if err == nil || !strings.Contains(err.Error(), "401") {
					t.Errorf("a relay with the wrong token published: %v", err)
				}
				if o, err := client.GetOrigin(ctx, relay.RegistryKey("", other)); !errors.Is(err, api.ErrNotFound) {
					t.Errorf("the registry has %v, %v", o, err)
				}
			}
			_ = pub.Close()
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := lookup()
				if errors.Is(err, api.ErrNotFound) || errors.Is(err, relay.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the registration outlived its publisher: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestRelaysClusterWithAuth: three moq-relays with --auth-key and
// --cluster-key, on a coordinator file and on moq-api over a real
// redis-server with the registry's token. A publisher with a token on one
// reaches subscribers with tokens on the two others; the relays prove
// they are relays with peer tokens. Without --cluster-key moq-relay
// refuses to start rather than run a cluster whose relays refuse each
// other.
func TestRelaysClusterWithAuth(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("user-token-secret-0123456789abcdef")
	authKey := filepath.Join(dir, "auth.key")
	if err := os.WriteFile(authKey, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	clusterKey := filepath.Join(dir, "cluster.pem")
	if err := os.WriteFile(clusterKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "coordinator.json")
	if _, _, err := execute(t, "--bind", "127.0.0.1:0", "--auth-key", authKey, "--coordinator-file", file); err == nil || !strings.Contains(err.Error(), "--cluster-key") {
		t.Errorf("--auth-key with a coordinator and no --cluster-key: %v", err)
	}
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	const apiToken = "registry-secret"
	hs := httptest.NewServer(server.New(server.Config{Redis: rdb, Token: apiToken}))
	t.Cleanup(func() {
		hs.Close()
		_ = rdb.Close()
	})
	for _, c := range []struct {
		name    string
		cluster clusterConfig
	}{
		{"file", clusterConfig{coordinatorFile: file, tlsDisableVerify: true, clusterKey: clusterKey}},
		{"api", clusterConfig{apiURL: hs.URL, apiToken: apiToken, apiTTL: time.Minute, tlsDisableVerify: true, clusterKey: clusterKey}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cluster := c.cluster
			cfg := config{
				cluster: cluster,
				ops:     opsConfig{authKey: authKey, maxRequests: 100, cacheMaxBytes: moqtransport.DefaultTrackMaxBytes, cacheMaxGroups: moqtransport.DefaultTrackMaxGroups},
			}
			var addrs []net.Addr
			var fps [][32]byte
			for range 3 {
				r := startRelayConfig(t, cfg)
				addrs, fps = append(addrs, r.addr), append(fps, r.fp)
			}
			token := func(pub, sub []string) wire.Parameters {
				signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, relay.Claims{Publish: pub, Subscribe: sub,
					RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(secret)
				if err != nil {
					t.Fatal(err)
				}
				kv, err := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Value: []byte(signed)})
				if err != nil {
					t.Fatal(err)
				}
				return wire.Parameters{kv}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tracks := &moqtransport.Tracks{}
			ns := wire.Namespace{"clock"}
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "now"}, moqtransport.TrackConfig{})
			tracks.Add(tr)
			pub := connectWithParams(t, ctx, fmt.Sprintf("moqt://%s/", addrs[0]), fps[0], tracks, token([]string{"clock"}, nil))
			if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
				t.Fatal(err)
			}
			var readers []*moqtransport.TrackReader
			for i, scheme := range []string{"https", "moqt"} {
				s := connectWithParams(t, ctx, fmt.Sprintf("%s://%s/", scheme, addrs[i+1]), fps[i+1], nil, token(nil, []string{"clock"}))
				sub, err := s.Subscribe(ctx, ns, "now", moqtransport.SubscribeOptions{})
				if err != nil {
					t.Fatalf("an authorized subscriber on relay %d: %v", i+1, err)
				}
				rd := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
				defer rd.Close()
				readers = append(readers, rd)
			}
			w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
			if err := w.WriteObject(0, []byte("12:00:00"), nil); err != nil {
				t.Fatal(err)
			}
			for i, rd := range readers {
				ev, err := rd.Next(ctx)
				if err != nil || ev.Kind != moqtransport.EventObject || string(ev.Object.Payload) != "12:00:00" {
					t.Fatalf("relay %d: %+v, %v", i+1, ev, err)
				}
			}
		})
	}
}
