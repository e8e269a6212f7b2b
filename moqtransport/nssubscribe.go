package moqtransport

import (
	"context"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// NamespaceSubscriptionHandler is implemented by a Handler that accepts
// SUBSCRIBE_NAMESPACE. After accepting, it announces every matching
// namespace, now and later, to the session with Session.PublishNamespace,
// and withdraws each with NamespacePublication.Close when it ends (draft-14
// §6). A Handler without it refuses SUBSCRIBE_NAMESPACE with NOT_SUPPORTED.
type NamespaceSubscriptionHandler interface {
	// SubscribeNamespace answers SUBSCRIBE_NAMESPACE: nil sends
	// SUBSCRIBE_NAMESPACE_OK, an error SUBSCRIBE_NAMESPACE_ERROR (a
	// *RequestError keeps its code). It is called after the session has
	// checked that the prefix overlaps none of the peer's others.
	SubscribeNamespace(ctx context.Context, s *Session, req *wire.SubscribeNamespace) error
	// NamespaceSubscribed is called once SUBSCRIBE_NAMESPACE_OK has been
	// sent: the moment to announce the namespaces that exist now.
	NamespaceSubscribed(s *Session, prefix wire.Namespace)
	// UnsubscribeNamespace tells that the peer ended a namespace
	// subscription (UNSUBSCRIBE_NAMESPACE) or the session ended.
	UnsubscribeNamespace(s *Session, prefix wire.Namespace)
}

// NamespaceSubscription is a SUBSCRIBE_NAMESPACE we sent and the peer
// accepted: the peer now sends PUBLISH_NAMESPACE for the namespaces under
// the prefix, which reach our Handler's PublishNamespace.
type NamespaceSubscription struct {
	s      *Session
	prefix Namespace
	once   sync.Once
}

// Prefix returns the subscribed prefix.
func (n *NamespaceSubscription) Prefix() Namespace { return n.prefix }

// Close ends the subscription (UNSUBSCRIBE_NAMESPACE).
func (n *NamespaceSubscription) Close() error {
	var err error
	n.once.Do(func() {
		n.s.mu.Lock()
		delete(n.s.ourNSSubs, nsKey(n.prefix))
		n.s.mu.Unlock()
		err = n.s.send(&wire.UnsubscribeNamespace{Prefix: n.prefix})
	})
	return err
}

// SubscribeNamespace asks the peer for the namespaces under prefix. A
// refusal is a *RequestError with the SUBSCRIBE_NAMESPACE_ERROR code.
func (s *Session) SubscribeNamespace(ctx context.Context, prefix Namespace, params Parameters) (*NamespaceSubscription, error) {
	if err := prefix.Validate(); err != nil {
		return nil, err
	}
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		return &wire.SubscribeNamespace{RequestID: id, Prefix: prefix, Params: params}
	})
	if err != nil {
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.SubscribeNamespaceOK:
		n := &NamespaceSubscription{s: s, prefix: prefix}
		s.mu.Lock()
		s.ourNSSubs[nsKey(prefix)] = n
		s.mu.Unlock()
		return n, nil
	case *wire.SubscribeNamespaceError:
		return nil, &RequestError{Message: wire.TypeSubscribeNamespaceError, Code: uint64(r.Code), Reason: r.Reason}
	}
	return nil, violation("%s in answer to SUBSCRIBE_NAMESPACE", resp.Type())
}

// overlaps reports whether a and b are prefixes of one another (equal
// included): draft-14 refuses such a pair on one session.
func overlaps(a, b wire.Namespace) bool { return a.HasPrefix(b) || b.HasPrefix(a) }

// handleSubscribeNamespace checks the prefix against the peer's others and
// asks the handler.
func (s *Session) handleSubscribeNamespace(m *wire.SubscribeNamespace) {
	h, ok := s.cfg.Handler.(NamespaceSubscriptionHandler)
	if !ok {
		s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: wire.SubscribeNamespaceNotSupported,
			Reason: "SUBSCRIBE_NAMESPACE is not supported by this endpoint"})
		return
	}
	s.mu.Lock()
	for _, p := range s.peerNSSubs {
		if overlaps(p, m.Prefix) {
			s.mu.Unlock()
			s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: wire.NamespacePrefixOverlap,
				Reason: "prefix " + m.Prefix.String() + " overlaps " + p.String()})
			return
		}
	}
	// Reserve the prefix while the handler decides.
	key := nsKey(m.Prefix)
	s.peerNSSubs[key] = m.Prefix
	s.mu.Unlock()
	s.goFunc(func() {
		var err error
		s.callback(func() { err = h.SubscribeNamespace(s.ctx, s, m) })
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			s.mu.Lock()
			delete(s.peerNSSubs, key)
			s.mu.Unlock()
			code, reason := requestCode(err, uint64(wire.SubscribeNamespaceInternalError))
			s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: wire.SubscribeNamespaceErrorCode(code), Reason: reason})
			return
		}
		if err := s.send(&wire.SubscribeNamespaceOK{RequestID: m.RequestID}); err != nil {
			return
		}
		s.callback(func() { h.NamespaceSubscribed(s, m.Prefix) })
	})
}

// handleUnsubscribeNamespace ends one of the peer's namespace
// subscriptions; one we do not know is ignored (it may have been refused).
func (s *Session) handleUnsubscribeNamespace(m *wire.UnsubscribeNamespace) {
	key := nsKey(m.Prefix)
	s.mu.Lock()
	_, ok := s.peerNSSubs[key]
	delete(s.peerNSSubs, key)
	s.mu.Unlock()
	if !ok {
		return
	}
	s.requestDone()
	if h, ok := s.cfg.Handler.(NamespaceSubscriptionHandler); ok {
		s.callback(func() { h.UnsubscribeNamespace(s, m.Prefix) })
	}
}
