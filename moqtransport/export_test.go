package moqtransport

// SetFetchWatchHook has h called each time one of s's fetches finds its
// stream late (FetchOptions.StreamTimeout), with whether the peer had
// room to open it.
func SetFetchWatchHook(s *Session, h func(room bool)) { s.uniRoom.watchHook.Store(&h) }

// NamespaceSubscriptionSize counts what n holds: the namespaces it knows
// and the changes queued for Next.
func NamespaceSubscriptionSize(n *NamespaceSubscription) (known, changed int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.known), len(n.changed)
}

// FetchRegistered reports whether s still routes FETCH id's stream and
// answer to a Fetch: false once its stream has been read to the end.
func FetchRegistered(s *Session, id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.fetches[id]
	return ok
}

// SubscriptionReading counts the data streams sub is reading.
func SubscriptionReading(sub *Subscription) int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return len(sub.reading)
}
