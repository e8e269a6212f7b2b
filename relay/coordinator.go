package relay

import (
	"context"
	"errors"
	"runtime/debug"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Coordinator lets relays find each other's namespaces (origin discovery).
// When a publisher announces a namespace, the relay registers it; when a
// subscriber asks for a namespace no local publisher has, the relay looks
// it up, connects to the relay that has it, and subscribes there.
//
// Scopes and the cluster: registrations are per scope (the session path),
// so a namespace published at https://a/room is found by subscribers of
// scope /room on every relay of the cluster, and an unscoped one by
// subscribers of any scope (the relay's fallback rule, which the relay
// applies: a Lookup is in one scope). A relay connects to
// another with the scope in its URL path, so the remote relay resolves the
// request in the same scope.
type Coordinator interface {
	// Register records that this relay serves ns in scope. Close the
	// registration when the namespace ends. When another relay already
	// serves ns or a prefix of it in scope (that scope only: the unscoped
	// one does not count), Register refuses with an error that wraps
	// ErrServedElsewhere. A panic in Register is recovered by the relay
	// and taken as a refusal (INTERNAL_ERROR); whatever it registered
	// before panicking is left behind, since no Registration came back to
	// close it.
	Register(ctx context.Context, scope string, ns wire.Namespace) (Registration, error)
	// Lookup returns the URL of the relay that serves the longest
	// registered prefix of ns in scope, that scope only, or ErrNotFound.
	// The relay falls back to the unscoped scope itself, after its own
	// publishers of the scope (see Relay.Subscribe).
	Lookup(ctx context.Context, scope string, ns wire.Namespace) (url string, err error)
}

// Registration is a namespace registered with a Coordinator.
type Registration interface {
	// Close removes the registration (and stops refreshing it).
	Close() error
}

// ErrNotFound is what Coordinator.Lookup returns for a namespace no relay
// serves.
var ErrNotFound = errors.New("relay: no relay serves this namespace")

// ErrServedElsewhere is what Coordinator.Register's error wraps when
// another relay serves the namespace, or a prefix of it, in the scope.
var ErrServedElsewhere = errors.New("relay: another relay serves this namespace")

// errCoordinatorPanicked is the claim's error when Coordinator.Register
// panicked; the peer is told only that registering failed.
var errCoordinatorPanicked = errors.New("the coordinator failed")

// register asks the coordinator to register ns in scope for a
// PUBLISH_NAMESPACE or a PUBLISH of session s. A panic in Register is
// recovered here, logged at Error with its stack, and is a refusal like
// any other error (INTERNAL_ERROR): the session recovers a panic in the
// relay's handler too, but the claim was left behind, a namespace held
// for the publisher it refused (and served from it), a pushed track's
// subscribers waiting for a claim never decided.
func (r *Relay) register(ctx context.Context, s *moqtransport.Session, scope string, ns wire.Namespace) (reg Registration, err error) {
	defer func() {
		if v := recover(); v != nil {
			r.logFor(s).Error("Coordinator.Register panicked; the namespace's claim is refused", "scope", scope, "namespace", ns.String(), "panic", v, "stack", string(debug.Stack()))
			reg, err = nil, errCoordinatorPanicked
		}
	}()
	return r.cfg.Coordinator.Register(ctx, scope, ns)
}
