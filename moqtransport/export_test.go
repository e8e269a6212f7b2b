package moqtransport

// SetFetchWatchHook has h called each time one of s's fetches finds its
// stream late (FetchOptions.StreamTimeout), with whether the peer had
// room to open it.
func SetFetchWatchHook(s *Session, h func(room bool)) { s.uniRoom.watchHook.Store(&h) }
