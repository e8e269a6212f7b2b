// Package moqtransport is a Media over QUIC Transport session,
// draft-ietf-moq-transport-14 (version 0xff00000e), over any transport that
// implements Conn; package moqnative provides raw QUIC (ALPN moq-00) and
// WebTransport.
//
// # Which API do I need?
//
//   - Read a track (a player, a recorder, a bot): dial with moqnative.Dial,
//     Connect, Session.Subscribe, then Subscription.ReadObject or the
//     Subscription.Objects iterator. See ExampleSession_Subscribe and
//     ExampleSubscription_ReadObject.
//   - Discover the broadcasts under a prefix: Session.SubscribeNamespace,
//     then NamespaceSubscription.Next. See ExampleSession_SubscribeNamespace,
//     which also subscribes through a relay run in-process.
//   - Start at the current group's key frame: Session.SubscribeJoin (a
//     joining FETCH in the same round trip). See ExampleSession_SubscribeJoin.
//   - See group ends, stream resets and skips as well as objects (a player
//     that reorders groups): Subscription.Track and Track.NewReader, whose
//     TrackReader yields Events.
//   - Change a subscription: Subscription.Update with UpdateOptions. See
//     ExampleSubscription_Update.
//   - Tell failures apart: RequestError, ConnError and the Err variables,
//     with errors.Is and errors.As. See Example_errors.
//   - Publish tracks and serve subscribers without a relay: NewTrack,
//     SubgroupWriter.WriteObject, Tracks.Handler in Config.Handler, and
//     Accept on the connections of a moqnative.Listen server. See
//     ExampleTracks_Handler; ExampleSession_Publish pushes a track instead.
//   - Serve FETCH from your own store: Handler.Fetch answering with
//     FetchResponse.Objects. See ExampleHandler_fetch.
//   - Decide who may do what: Config.Authorize. See ExampleAuthorizer.
//   - Run a relay, in-process or as a binary: package relay (relay.New and
//     relay.NewServer; its Example), or the moq-relay command.
//   - Dial and listen, raw QUIC or WebTransport, or mount MoQT on your own
//     quic-go or http3 server: package moqnative (ExampleDial,
//     ExampleListen, ExampleWebTransportHandler).
//   - Encode and decode draft-14 messages and streams yourself: package
//     wire. The types a session's API uses are aliased here (Namespace,
//     Location, Filter, the error codes, ...), so the uses above need no
//     import of wire.
//
// # Sessions
//
// Connect runs the client side of setup on a connection and Accept the
// server side. A session negotiates draft-14, exchanges MAX_REQUEST_ID,
// MOQT_IMPLEMENTATION and, over raw QUIC, PATH and AUTHORITY, and then reads
// the control stream until it ends. Every rule the draft gives a session
// error code for closes the session with that code: a malformed or unknown
// message (PROTOCOL_VIOLATION), a request ID of the wrong parity, reused or
// skipped (INVALID_REQUEST_ID), a request past our MAX_REQUEST_ID grant
// (TOO_MANY_REQUESTS), an undecodable token (KEY_VALUE_FORMATTING_ERROR),
// and the rest.
//
// Request IDs are flow-controlled in both directions. We grant the peer
// Config.MaxRequests open requests and top the grant up as they finish; our
// own requests wait for the peer's grant (sending REQUESTS_BLOCKED once per
// limit) until their context ends.
//
// # No hangs
//
// The control stream has one writer, a goroutine of the session that runs
// while control messages wait: sending a control message only queues it, so
// no lock is held while the network waits. Each write must complete within
// Config.ControlWriteTimeout, and the queue holds at most
// Config.MaxControlBacklog bytes: a peer that stops reading its control
// stream is closed with CONTROL_MESSAGE_TIMEOUT, and every request waiting
// on it gets an error. Close may be called from a Handler or Authorizer
// callback. Fetch.Cancel stops the stream and ends the goroutine that read
// it. A publisher may send FETCH_OK and never open the fetch stream:
// ReadObject's context bounds that wait, and FetchOptions.StreamTimeout
// cancels such a fetch for the caller once the publisher could have opened
// the stream for that long. Request IDs and grants stop at 2^62-1 (a request
// past the last ID fails with ErrRequestIDsExhausted), and a joining FETCH
// whose end is object 2^62-1 is answered with the end {G, 0}.
//
// A track from the peer that turns out malformed (§2.5: a datagram on a
// track whose objects came on streams, an object past the end of its
// subgroup, group or track, a fetch stream out of order) ends every
// subscription to it and every fetch of it: we UNSUBSCRIBE and
// FETCH_CANCEL, the track closes with PUBLISH_DONE MALFORMED_TRACK (which a
// relay's downstream subscribers receive), and the fetch streams we serve
// from it are reset.
//
// # Publishing
//
// A Track holds objects (track, group, subgroup, object) written once and
// read by any number of readers at their own pace, in a cache bounded by
// groups, bytes and age. Config.Handler has one function for each request
// kind a peer can send (a nil one refuses it with NOT_SUPPORTED, or
// TRACK_DOES_NOT_EXIST for SUBSCRIBE): Subscribe answers SUBSCRIBE with a
// track, Fetch answers FETCH (FetchFromTrack serves it from a track's cache;
// FetchFromRelayedTrack from a relay's copy of one, only for a range that
// copy knows complete), TrackStatus answers TRACK_STATUS (TrackStatusOf
// reports a track's), and Tracks.Handler serves a set of tracks to all
// three. The session then delivers a subscribed track: one unidirectional
// stream per subgroup with the smallest header type that fits (Subgroup ID
// 0, the first object's ID, or explicit; extensions only when the subgroup
// has them; the end-of-group types when the subgroup ends its group),
// draft-14 object ID deltas, status objects, datagrams, and PUBLISH_DONE
// with the true status and stream count. All four filters, the forward flag,
// group order, end group and SUBSCRIBE_UPDATE are honoured.
//
// # Subscribing
//
// Session.Subscribe returns a Subscription whose Track receives the objects
// with their true IDs, status and extensions; Subscription.ReadObject and
// Subscription.Objects read them in the order they arrived and end with
// io.EOF (or the end of the loop) when the publisher ends the track, and
// with the PUBLISH_DONE code as a *RequestError otherwise. Data that arrives
// before SUBSCRIBE_OK waits, within Config.MaxPendingStreams and
// Config.PendingStreamTimeout, for its track alias; data for the alias of a
// subscription that ended is stopped at once (the session remembers the
// latest 1024 such aliases), and so is data for an unknown alias while no
// SUBSCRIBE of ours waits for its answer and Handler.Publish is nil. A
// session reads datagrams from the first track alias it learns (SUBSCRIBE_OK
// or the peer's PUBLISH): before that none can be for a track of its own,
// and what the peer sends waits in the transport (quic-go keeps up to 128
// per connection) to be read then. PUBLISH_DONE ends the track once the
// streams it counts have been read.
//
// A Largest Object subscription starts after the largest object its
// SUBSCRIBE_OK names, in the middle of a group. A viewer that wants the
// group from its start (a key frame) sends a joining FETCH (relative,
// JoiningStart 0) with it: SubscribeJoin sends it right behind the
// SUBSCRIBE, in the same round trip (Fetch with FetchOptions{Joining: sub}
// sends one later). It returns the group's objects up to where the
// subscription's begin, so the two are contiguous; a peer that refuses it
// answers FETCH_ERROR (such as NOT_SUPPORTED), and the viewer waits for
// the next group instead.
//
// # Errors
//
// A request the peer refuses fails with a *RequestError carrying the
// draft-14 code of its answer (SUBSCRIBE_ERROR, FETCH_ERROR, ...), and a
// subscription the publisher ends with an error code ends with one
// carrying the PUBLISH_DONE code. errors.Is compares them by what the code
// means: errors.Is(err, ErrTrackNotFound) for TRACK_DOES_NOT_EXIST from
// SUBSCRIBE, FETCH or TRACK_STATUS, errors.Is(err, ErrUnauthorized) for
// UNAUTHORIZED from any request. Session.Err says why a session ended: a
// *ConnError with the SessionErrorCode either side closed it with (the
// transport's own error when the connection was lost below MoQT, such as
// an idle timeout), which errors.Is(err, &SessionError{Code: c}) tests.
// Calls made after the end return an error that matches ErrSessionClosed;
// requests (Subscribe, Fetch, ...) wrap Err in it too.
//
// # Memory a peer can make a session hold
//
// Every buffer a peer fills is bounded (the in-flight budget below can be
// passed by the object each concurrent stream is completing, and a track's
// cache always keeps the object just written). An object's payload and
// extensions are allocated as their bytes arrive, never at a declared length
// (wire.EagerObjectBytes). The data streams of a session, those waiting for
// their header or track alias included, hold at most Config.MaxBytesInFlight
// for their readers and the objects they are reading, and at most a parent
// budget (Config.Reader.Budget) shared with other sessions; a stream that
// would exceed either is cancelled with STOP_SENDING CANCELLED (draft-14
// "Resource Exhaustion") and the session goes on. Session.InFlight reports
// the figures. A track's cache is bounded by TrackConfig, and the caches of
// many tracks together by a CacheBudget, which evicts from the least
// recently read tracks first. How many streams a peer may open at once is
// the transport's limit (moqnative: 1024).
//
// # Live delivery and priorities
//
// Delivery to one subscriber is a scheduler (sched.go): a dispatcher reads
// the track without ever waiting for the network and hands each subgroup to
// a writer goroutine of its own, so a stream stalled by flow control or a
// slow link delays no other. A subscription has at most 16 open subgroup
// streams (a 17th abandons the oldest group's) and at most
// Config.MaxBacklogBytes of objects queued (past it the oldest groups are
// abandoned); queued objects are the cache's, not copies. A writer that
// finds several objects queued writes them (up to 16 KiB) in one stream
// write; Config.WriteCoalesce lets it wait a little for them on a track of
// small, frequent objects read by more than one subscriber, trading that
// much latency for fewer send calls and wakeups (Config.ObserveHold
// reports each hold). Such a write holds its copy of the objects until the
// transport has packed it, so the copies a session's writes hold at once
// are bounded, session-wide, by Config.MaxWriteAhead (two such writes by
// default): past it a writer waits holding no copy, and the most urgent
// stream writes next; a writer more urgent than every write in progress
// does not wait (the transport would send it first). A write that does not
// move while later ones less urgent, or as urgent on streams opened after
// its own, return (the peer stopped reading that stream) stops counting,
// so it holds up no other stream.
//
// Late data is dropped a group at a time, not a byte at a time. The
// delivery timeout is the smaller of the subscriber's and the publisher's
// DELIVERY TIMEOUT, or Config.DefaultDeliveryTimeout when neither gave one.
// A writer abandons its subgroup before starting an object past it
// (DELIVERY_TIMEOUT) or, on a relay, past the publisher's
// MAX_CACHE_DURATION (CANCELLED). Opening a stream (waiting for the peer's
// stream limit) waits no longer than the object's deadline. Once an object
// with a deadline is written, the stream has one expire timer (not one per
// write), kept at the deadline of the last object written: it cuts a write
// still blocked then, and, since quic-go accepts small writes at once and
// then retransmits them for as long as it takes, it also resets a stream
// whose writes all returned less than a probe timeout (the path's smoothed
// RTT + 4 × its deviation + 25 ms, from RTTConn) before that deadline:
// their data may still be in flight. Each of these resets the stream (the
// timer with DELIVERY_TIMEOUT) and drops the rest of the subgroup; the next
// group starts on a fresh stream. Data handed over earlier than that has
// arrived (or been declared lost and resent), and quic-go cannot tell us
// more, so the stream is left alone: an open one stays open for the
// subgroup's next object however late it comes. The same rule holds after
// the FIN: the subscription takes the finished stream over, keeping at most
// 16 (one timer for all of them) and forgetting the oldest.
//
// Priorities follow §7: subscriber priority, then publisher priority, then
// group order (descending: the newest group first). quic-go schedules
// streams by an urgency of 0 to 7 and, within an urgency, by stream ID
// (non-incremental, what we use). The control stream takes urgency 0. The
// session ranks every open subgroup stream of all its subscriptions by that
// order and gives the ranks urgencies 1 to 7, re-ranking whenever a stream
// opens or ends or SUBSCRIBE_UPDATE changes a subscriber priority (only the
// streams of that subscription are re-keyed, and only the urgencies that
// change are set, so a session serving many tracks pays little): a newer
// group that opens demotes the older ones (descending order) or queues
// behind them (ascending order, where the delivery timeout then bounds how
// late the older ones may be). What cannot be expressed: more than seven
// distinct ranks at once (the seventh and later share urgency 7, in
// stream-ID order, which is group order ascending); subgroups of one group
// share their urgency, in stream-ID order (the order they opened), not by
// subgroup ID; and objects inside one stream keep their track order.
// A fetch stream is not ranked with them: it takes urgency 1 to 7 by its
// subscriber priority alone (0-36 take 1, 220-255 take 7), so it never
// shares urgency 0 with the control stream.
// WebTransport streams (webtransport-go) have no priority at all: there,
// streams progress independently (quic-go's default round robin) and the
// delivery timeout and the abandoning of stale groups are what keep a slow
// viewer live. Datagrams are sent as they arrive.
//
// A TrackReader that falls behind the cache continues at the start of the
// newest cached group, not the oldest: where a decoder can start.
//
// # Peer deviations
//
// Deployed relays depart from draft-14 in small ways. The policy: a
// departure that harms nothing this session relies on is tolerated, with
// one Warn log per kind and session, and read the way the package doc says
// below; Config.StrictPeer turns each into the PROTOCOL_VIOLATION the draft
// names. Everything else closes the session with its draft-14 code. We
// never depart from the draft ourselves to suit a peer. Each tolerated
// deviation is decided in one place (deviation.go):
//
//   - FETCH_OK with Group Order 0x0 (§9.17 calls it a protocol error;
//     imquic 0.0.1's relay echoes the FETCH's order, 0x0 when it asked for
//     the publisher's): read as the order the FETCH asked for, or
//     ascending when it asked for the publisher's.
//   - A setup parameter 0x05 where AUTHORITY is never valid: in
//     SERVER_SETUP, or in a CLIENT_SETUP over WebTransport (§9.3.2.1
//     closes the session with INVALID_AUTHORITY). The draft-14 text also
//     numbers MOQT_IMPLEMENTATION 0x05 (the editor's copy moved it to 0x07
//     the next day, as draft-15 has it; we send 0x07), so a peer following
//     the text sends its name there: read as its MOQT_IMPLEMENTATION
//     (Session.PeerImplementation). A client's 0x05 over raw QUIC is
//     AUTHORITY, checked as one.
//
// A peer whose SETUP has no MAX_REQUEST_ID grants no request IDs (the
// MAX_REQUEST_ID setup parameter: the default is 0); the xquic draft-14
// relay does so. That is not a deviation and we do not send requests past
// it: the session logs a warning when a request first waits for a grant that
// never came, sends REQUESTS_BLOCKED, and with Config.RequestIDTimeout the
// request fails after that long with ErrRequestsBlocked, whose message says
// why. Media clients set it, so that they end with a clear message within
// seconds instead of waiting silently.
//
// # Logging
//
// The package logs through log/slog (Config.Logger) and is silent by
// default.
package moqtransport
