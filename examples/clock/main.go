// Command clock publishes a track of timestamps through a MoQT relay, or
// subscribes to it and prints them: the smallest program that uses
// moqnative.Dial and the moqtransport API on both sides. Copy it as a
// starting point.
//
// Against the development relay (dev/relay, which logs its self-signed
// certificate's fingerprint on start):
//
//	dev/relay
//	go run ./examples/clock -fingerprint HEX -publish moqt://localhost:4443/
//	go run ./examples/clock -fingerprint HEX moqt://localhost:4443/
//
// Use an https:// URL for WebTransport instead of raw QUIC. The publisher
// writes one group per tick, holding one object: the time, RFC 3339. The
// subscriber prints each object's group and payload (skipping a group that
// arrives after a newer one), and exits after -count objects or when the
// publisher ends the track.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// options are the program's flags.
type options struct {
	url         string
	publish     bool
	namespace   string
	track       string
	interval    time.Duration
	count       int
	fingerprint string
	insecure    bool

	// announced, when set, is called once the publisher's namespace is
	// announced (tests wait for it before subscribing).
	announced func()
}

func main() {
	var o options
	flag.BoolVar(&o.publish, "publish", false, "publish the clock track (default: subscribe and print it)")
	flag.StringVar(&o.namespace, "namespace", "clock", "track namespace, slash-separated")
	flag.StringVar(&o.track, "track", "now", "track name")
	flag.DurationVar(&o.interval, "interval", time.Second, "publisher: time between objects")
	flag.IntVar(&o.count, "count", 0, "subscriber: exit after this many objects (0: until the track ends)")
	flag.StringVar(&o.fingerprint, "fingerprint", "", "accept the relay's certificate by its SHA-256 fingerprint (hex)")
	flag.BoolVar(&o.insecure, "insecure", false, "accept any certificate (development only)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: clock [flags] moqt://host:port/ | https://host:port/path\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	o.url = flag.Arg(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// run connects to o.url and publishes or subscribes until ctx ends.
func run(ctx context.Context, o options, out io.Writer) error {
	if o.publish && o.interval <= 0 {
		// time.NewTicker panics on it, after the namespace is announced.
		return fmt.Errorf("-interval: want a positive duration, got %v", o.interval)
	}
	tlsCfg := moqnative.ClientTLS{InsecureSkipVerify: o.insecure}
	if o.fingerprint != "" {
		b, err := hex.DecodeString(o.fingerprint)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("-fingerprint: want 64 hex digits (a SHA-256), got %q", o.fingerprint)
		}
		tlsCfg.ServerCertificateHashes = [][32]byte{[32]byte(b)}
	}
	d, err := moqnative.Dial(ctx, o.url, moqnative.ClientConfig{TLS: tlsCfg})
	if err != nil {
		return fmt.Errorf("dial %s: %w", o.url, err)
	}
	defer d.Close()

	name := moqtransport.FullTrackName{Namespace: moqtransport.ParseNamespace(o.namespace), Name: o.track}
	// A publisher serves its track to whoever subscribes over this session
	// (the relay); a subscriber serves nothing.
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	var handler moqtransport.Handler
	if o.publish {
		tracks := &moqtransport.Tracks{}
		tracks.Add(track)
		handler = tracks.Handler()
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority, Handler: handler})
	if err != nil {
		return fmt.Errorf("MoQT setup with %s: %w", o.url, err)
	}
	defer s.Close()

	if o.publish {
		return publish(ctx, s, track, o)
	}
	return subscribe(ctx, s, name, o.count, out)
}

// publish announces the track's namespace, then writes one group per tick
// until ctx ends, the session ends (the relay went away), or the relay
// cancels the namespace: writing on after either would reach nobody.
func publish(ctx context.Context, s *moqtransport.Session, track *moqtransport.Track, o options) error {
	name := track.Name()
	pub, err := s.PublishNamespace(ctx, name.Namespace, nil)
	if err != nil {
		return fmt.Errorf("announce %s: %w", name.Namespace, err)
	}
	if o.announced != nil {
		o.announced()
	}
	defer track.Close(nil) // PUBLISH_DONE (TRACK_ENDED) to the subscribers
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for group := uint64(0); ; group++ {
		w, err := track.OpenSubgroup(group, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			return err
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		if err := w.WriteObject(0, []byte(now), nil); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.Done():
			return fmt.Errorf("session with %s ended: %w", o.url, s.Err())
		case <-pub.Done():
			// PUBLISH_NAMESPACE_CANCEL is a *RequestError; anything
			// else is the session's end, seen here first.
			var re *moqtransport.RequestError
			if !errors.As(pub.Err(), &re) {
				return fmt.Errorf("session with %s ended: %w", o.url, pub.Err())
			}
			return fmt.Errorf("namespace %s cancelled by the relay: %w", name.Namespace, pub.Err())
		case <-tick.C:
		}
	}
}

// subscribe prints the track's objects until count of them, the end of the
// track, or ctx's end.
func subscribe(ctx context.Context, s *moqtransport.Session, name moqtransport.FullTrackName, count int, out io.Writer) error {
	sub, err := s.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
	if err != nil {
		return fmt.Errorf("subscribe to %s/%s: %w", name.Namespace, name.Name, err)
	}
	defer sub.Unsubscribe()
	n := 0
	newest := uint64(0)
	for obj, err := range sub.Objects(ctx) {
		if err != nil {
			return err
		}
		// Each group travels on its own stream, and streams are
		// independent: a group can arrive after a newer one (a lost
		// packet, a busy sender). A clock shows only newer times.
		if n > 0 && obj.Group < newest {
			continue
		}
		newest = obj.Group
		fmt.Fprintf(out, "%d %s\n", obj.Group, obj.Payload)
		if n++; count > 0 && n >= count {
			return nil
		}
	}
	return nil // the publisher ended the track
}
