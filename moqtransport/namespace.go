package moqtransport

import (
	"context"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// NamespacePublication is a namespace we published with PUBLISH_NAMESPACE
// and the peer accepted.
type NamespacePublication struct {
	s         *Session
	namespace wire.Namespace
	once      sync.Once
	done      chan struct{}
	err       error
}

// Namespace returns the published namespace.
func (p *NamespacePublication) Namespace() Namespace { return p.namespace }

// Done is closed when the publication ends: we withdrew it, the peer
// cancelled it (PUBLISH_NAMESPACE_CANCEL), or the session ended.
func (p *NamespacePublication) Done() <-chan struct{} { return p.done }

// Err says why the publication ended: nil after Close, a *RequestError
// after PUBLISH_NAMESPACE_CANCEL, or the session's error.
func (p *NamespacePublication) Err() error {
	<-p.done
	return p.err
}

func (p *NamespacePublication) end(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.done)
	})
}

// Close withdraws the namespace with PUBLISH_NAMESPACE_DONE.
func (p *NamespacePublication) Close() error {
	s := p.s
	s.mu.Lock()
	key := nsKey(p.namespace)
	mine := s.ourNamespaces[key] == p
	if mine {
		delete(s.ourNamespaces, key)
	}
	s.mu.Unlock()
	p.end(nil)
	if !mine {
		return nil
	}
	return s.send(&wire.PublishNamespaceDone{Namespace: p.namespace})
}

// PublishNamespace announces ns to the peer and waits for its answer. A
// refusal is a *RequestError with the PUBLISH_NAMESPACE_ERROR code.
func (s *Session) PublishNamespace(ctx context.Context, ns Namespace, params Parameters) (*NamespacePublication, error) {
	if err := ns.Validate(); err != nil {
		return nil, err
	}
	sent := false
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		return &wire.PublishNamespace{RequestID: id, Namespace: ns, Params: params}
	}, requestHooks{register: func(uint64) { sent = true }})
	if err != nil {
		if sent && ctx.Err() != nil && s.ctx.Err() == nil {
			// We gave up waiting for the answer: the peer may accept
			// still, so the namespace is withdrawn.
			s.sendOrFail(&wire.PublishNamespaceDone{Namespace: ns})
		}
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.PublishNamespaceOK:
		p := &NamespacePublication{s: s, namespace: ns, done: make(chan struct{})}
		s.mu.Lock()
		setIn(&s.ourNamespaces, nsKey(ns), p)
		s.mu.Unlock()
		return p, nil
	case *wire.PublishNamespaceError:
		return nil, &RequestError{Message: wire.TypePublishNamespaceError, Code: uint64(r.Code), Reason: r.Reason}
	}
	return nil, violation("%s in answer to PUBLISH_NAMESPACE", resp.Type())
}

func (s *Session) handleNamespaceCancel(m *wire.PublishNamespaceCancel) {
	s.mu.Lock()
	key := nsKey(m.Namespace)
	p := s.ourNamespaces[key]
	delete(s.ourNamespaces, key)
	s.mu.Unlock()
	if p != nil {
		p.end(&RequestError{Message: wire.TypePublishNamespaceCancel, Code: uint64(m.Code), Reason: m.Reason})
	}
}

// handlePublishNamespace asks the handler about a namespace the peer
// published and answers.
func (s *Session) handlePublishNamespace(m *wire.PublishNamespace) {
	h := s.cfg.Handler.PublishNamespace
	if h == nil {
		// Without a handler, the namespaces this session asked for (under
		// one of its SubscribeNamespace prefixes) are accepted, for its
		// NamespaceSubscription to report; any other is refused.
		h = func(_ context.Context, s *Session, req *wire.PublishNamespace) error {
			if s.HasNamespaceSubscription(req.Namespace) {
				return nil
			}
			return NamespaceError(wire.NamespaceNotSupported, "PUBLISH_NAMESPACE is not supported by this endpoint")
		}
	}
	key := nsKey(m.Namespace)
	pend := &nsPending{}
	s.mu.Lock()
	setIn(&s.nsPending, key, pend)
	s.mu.Unlock()
	s.goFunc(func() {
		err := s.callbackErr("Handler.PublishNamespace", func() error { return h(s.ctx, s, m) })
		// Decided and, if accepted, in place in one hold of s.mu: a
		// PUBLISH_NAMESPACE_DONE or CancelNamespace between the two found
		// the namespace neither pending nor published, and was dropped.
		s.mu.Lock()
		if s.nsPending[key] == pend {
			delete(s.nsPending, key)
		}
		withdrawn, cancelled := pend.withdrawn, pend.cancel
		var n *NamespaceSubscription
		accepted := err == nil && !withdrawn && cancelled == nil
		if accepted {
			setIn(&s.peerNamespaces, key, m.Namespace)
			if n = s.nsSubscriptionFor(m.Namespace); n != nil {
				setIn(&s.nsNoted, key, n)
			}
		}
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			code, reason := requestCode(err, wire.TypePublishNamespaceError, uint64(wire.NamespaceInternalError))
			s.refuse(&wire.PublishNamespaceError{RequestID: m.RequestID, Code: wire.PublishNamespaceErrorCode(code), Reason: reason})
			return
		}
		if withdrawn || cancelled != nil {
			// Withdrawn (PUBLISH_NAMESPACE_DONE) or cancelled while the
			// handler decided: the request still gets its answer, and
			// then ends as it would have had the namespace been in place.
			// (The DONE used to find nothing and be dropped: the
			// namespace stayed published for the rest of the session.)
			s.sendOrFail(&wire.PublishNamespaceOK{RequestID: m.RequestID})
			s.requestDone()
			if cancelled != nil {
				s.sendOrFail(cancelled)
			} else if h := s.cfg.Handler.PublishNamespaceDone; h != nil {
				s.callback("Handler.PublishNamespaceDone", func() { h(s, m.Namespace) })
			}
			return
		}
		if n != nil {
			n.note(m.Namespace, true)
		}
		s.sendOrFail(&wire.PublishNamespaceOK{RequestID: m.RequestID})
	})
}

// nsPending is a PUBLISH_NAMESPACE of the peer's that its handler has not
// answered yet: what happened to it meanwhile. Guarded by Session.mu.
type nsPending struct {
	withdrawn bool                         // PUBLISH_NAMESPACE_DONE came
	cancel    *wire.PublishNamespaceCancel // CancelNamespace was called
}

// handlePublishNamespaceDone: the peer withdrew a namespace; its request is
// over.
func (s *Session) handlePublishNamespaceDone(m *wire.PublishNamespaceDone) {
	s.mu.Lock()
	key := nsKey(m.Namespace)
	if p := s.nsPending[key]; p != nil {
		p.withdrawn = true // carried out once the handler answers
		s.mu.Unlock()
		return
	}
	_, ok := s.peerNamespaces[key]
	delete(s.peerNamespaces, key)
	n, noted := s.nsNoted[key]
	delete(s.nsNoted, key)
	s.mu.Unlock()
	if !ok {
		return
	}
	s.requestDone()
	if noted {
		n.note(m.Namespace, false)
	}
	if h := s.cfg.Handler.PublishNamespaceDone; h != nil {
		s.callback("Handler.PublishNamespaceDone", func() { h(s, m.Namespace) })
	}
}

// CancelNamespace refuses further subscriptions to a namespace the peer
// published (PUBLISH_NAMESPACE_CANCEL).
func (s *Session) CancelNamespace(ns Namespace, code PublishNamespaceErrorCode, reason string) error {
	s.mu.Lock()
	key := nsKey(ns)
	if p := s.nsPending[key]; p != nil {
		// Its handler has not answered yet: cancelled once it accepts.
		if p.cancel == nil && !p.withdrawn {
			p.cancel = &wire.PublishNamespaceCancel{Namespace: ns, Code: code, Reason: reason}
		}
		s.mu.Unlock()
		return nil
	}
	_, ok := s.peerNamespaces[key]
	delete(s.peerNamespaces, key)
	n, noted := s.nsNoted[key]
	delete(s.nsNoted, key)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if noted {
		n.note(ns, false)
	}
	s.requestDone()
	return s.send(&wire.PublishNamespaceCancel{Namespace: ns, Code: code, Reason: reason})
}
