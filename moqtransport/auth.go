package moqtransport

import (
	"errors"
	"fmt"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// AuthToken is an AUTHORIZATION TOKEN as the application sees it: the
// alias indirection already resolved.
type AuthToken struct {
	Type  uint64
	Value []byte
}

// Param returns the AUTHORIZATION TOKEN parameter that carries t by value
// (alias type USE_VALUE, §9.2.1.1), for the Params of a request's options
// or Config.SetupParams: the peer's Authorizer sees t. It fails only for a Type
// past the varint range (2^62-1). Registering and using aliases needs
// package wire (wire.TokenParam).
func (t AuthToken) Param() (KeyValue, error) {
	kv, err := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Type: t.Type, Value: t.Value})
	if err != nil {
		return KeyValue{}, fmt.Errorf("moqtransport: authorization token: %w", err)
	}
	return kv, nil
}

// Authorizer decides whether the peer may do what a message asks, given the
// tokens it carried (§9.2.1.1). It is called on the session's control
// goroutine, in order, for the peer's setup message (CLIENT_SETUP on the
// server side, SERVER_SETUP on the client side, both before the session's
// control loop runs, so it is the place to admit or refuse a session) and
// for every request that can carry tokens: SUBSCRIBE, PUBLISH_NAMESPACE,
// SUBSCRIBE_NAMESPACE, TRACK_STATUS, FETCH and PUBLISH. It must not block.
//
// A nil error allows. ErrUnauthorized, ErrExpiredToken and
// ErrMalformedToken refuse the request with the matching code of its
// error registry (or close the session, for a setup message); any other
// error refuses with UNAUTHORIZED. For a setup message, a
// *SessionError closes the session with its own code. A panic is
// recovered and logged, and refuses with INTERNAL_ERROR (see Handler).
type Authorizer func(s *Session, m Message, tokens []AuthToken) error

// Message is a control message (an alias of wire.Message): what an
// Authorizer decides on. A request is a *SubscribeRequest,
// *TrackStatusRequest, *PublishRequest, *PublishNamespaceRequest,
// *SubscribeNamespaceRequest or *wire.Fetch; the setup message is a
// *wire.ClientSetup or *wire.ServerSetup.
type Message = wire.Message

// Errors an Authorizer returns.
var (
	ErrUnauthorized   = errors.New("moqt: unauthorized")
	ErrExpiredToken   = errors.New("moqt: authorization token expired")
	ErrMalformedToken = errors.New("moqt: authorization token malformed")
)

// tokenCacheEntryOverhead is what each registered alias costs in the
// cache besides its value (§9.2.1.1: "16 bytes + the size of the Token
// Value").
const tokenCacheEntryOverhead = 16

// tokenCache holds the aliases the peer registered with us.
type tokenCache struct {
	mu      sync.Mutex
	max     uint64 // our MAX_AUTH_TOKEN_CACHE_SIZE
	size    uint64
	aliases map[uint64]AuthToken
}

// resolve applies the tokens of one message: REGISTER and DELETE change
// the cache (a session error when they break its rules), USE_ALIAS and
// USE_VALUE give the tokens the message presents. An alias that is not
// registered gives a request error, the only one resolve returns
// (UNKNOWN_AUTH_TOKEN_ALIAS has no request code in draft-14, so a request
// is refused as unauthorized; a SUBSCRIBE_UPDATE, which has no error
// reply, closes the session with it).
// inSetup relaxes an over-size REGISTER into a USE_VALUE, as the draft
// requires of a server for CLIENT_SETUP (and only there).
func (c *tokenCache) resolve(ps wire.Parameters, inSetup bool) (tokens []AuthToken, requestErr, sessionErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, kv := range ps {
		if kv.Type != wire.ParamAuthorizationToken {
			continue
		}
		t, err := wire.ParseToken(kv.Bytes)
		if err != nil {
			return nil, nil, err // KEY_VALUE_FORMATTING_ERROR
		}
		switch t.AliasType {
		case wire.TokenUseValue:
			tokens = append(tokens, AuthToken{Type: t.Type, Value: t.Value})
		case wire.TokenRegister:
			if _, dup := c.aliases[t.Alias]; dup {
				return nil, nil, &wire.SessionError{Code: wire.DuplicateAuthTokenAlias, Reason: fmt.Sprintf("token alias %d is already registered", t.Alias)}
			}
			cost := tokenCacheEntryOverhead + uint64(len(t.Value))
			if c.size+cost > c.max {
				if inSetup {
					tokens = append(tokens, AuthToken{Type: t.Type, Value: t.Value})
					continue
				}
				return nil, nil, &wire.SessionError{Code: wire.AuthTokenCacheOverflow,
					Reason: fmt.Sprintf("registering alias %d needs %d bytes; %d of %d are in use", t.Alias, cost, c.size, c.max)}
			}
			if c.aliases == nil {
				c.aliases = map[uint64]AuthToken{}
			}
			tok := AuthToken{Type: t.Type, Value: append([]byte(nil), t.Value...)}
			c.aliases[t.Alias] = tok
			c.size += cost
			tokens = append(tokens, tok)
		case wire.TokenDelete:
			tok, ok := c.aliases[t.Alias]
			if !ok {
				return nil, nil, &wire.SessionError{Code: wire.UnknownAuthTokenAlias, Reason: fmt.Sprintf("DELETE of token alias %d, which is not registered", t.Alias)}
			}
			delete(c.aliases, t.Alias)
			c.size -= tokenCacheEntryOverhead + uint64(len(tok.Value))
		case wire.TokenUseAlias:
			tok, ok := c.aliases[t.Alias]
			if !ok {
				requestErr = fmt.Errorf("%w: token alias %d is not registered", ErrUnauthorized, t.Alias)
				continue
			}
			tokens = append(tokens, tok)
		}
	}
	return tokens, requestErr, nil
}

// authorize applies the tokens of a request and asks the Authorizer. A
// non-nil error is a session error; refused reports that the request was
// answered with its error message and must go no further.
func (s *Session) authorize(m wire.Message, id uint64, ps wire.Parameters) (refused bool, err error) {
	tokens, reqErr, sessErr := s.tokens.resolve(ps, false)
	if sessErr != nil {
		return false, sessErr
	}
	if reqErr == nil && s.cfg.Authorize != nil {
		reqErr = s.callbackErr("Authorizer", func() error { return s.cfg.Authorize(s, m, tokens) })
		if s.ctx.Err() != nil {
			// Closed while the Authorizer ran: Close may have
			// returned, and the request goes no further.
			return true, nil
		}
	}
	if reqErr == nil {
		return false, nil
	}
	s.refuse(refusal(m, id, reqErr))
	return true, nil
}

// registerTokens takes the token REGISTERs and DELETEs of a request refused
// before authorization (a FETCH's range, an overlapping prefix): §9.2.1.1
// has them take effect even when the request fails for another reason.
// The request is not authorized, so Config.Authorize notes no grant for
// it. A token error that closes the session still does.
func (s *Session) registerTokens(ps wire.Parameters) error {
	_, _, sessErr := s.tokens.resolve(ps, false)
	return sessErr
}

// refusal builds the error answer to request m for an authorization error:
// UNAUTHORIZED, EXPIRED_AUTH_TOKEN or MALFORMED_AUTH_TOKEN in the answer's
// registry, by name (PUBLISH_ERROR has no token codes: UNAUTHORIZED).
func refusal(m wire.Message, id uint64, err error) wire.Message {
	name := "UNAUTHORIZED"
	switch {
	case errors.Is(err, errCallbackPanicked):
		name = "INTERNAL_ERROR"
	case errors.Is(err, ErrExpiredToken):
		name = "EXPIRED_AUTH_TOKEN"
	case errors.Is(err, ErrMalformedToken):
		name = "MALFORMED_AUTH_TOKEN"
	}
	code := func(answer MessageType) uint64 {
		if c, ok := codeNamed(answer, name); ok {
			return c
		}
		c, _ := codeNamed(answer, "UNAUTHORIZED")
		return c
	}
	reason := err.Error()
	switch m.Type() {
	case wire.TypeSubscribe:
		return &wire.SubscribeError{RequestID: id, Code: wire.SubscribeErrorCode(code(wire.TypeSubscribeError)), Reason: reason}
	case wire.TypeTrackStatus:
		return &wire.TrackStatusError{RequestID: id, Code: wire.SubscribeErrorCode(code(wire.TypeTrackStatusError)), Reason: reason}
	case wire.TypeFetch:
		return &wire.FetchError{RequestID: id, Code: wire.FetchErrorCode(code(wire.TypeFetchError)), Reason: reason}
	case wire.TypePublishNamespace:
		return &wire.PublishNamespaceError{RequestID: id, Code: wire.PublishNamespaceErrorCode(code(wire.TypePublishNamespaceError)), Reason: reason}
	case wire.TypeSubscribeNamespace:
		return &wire.SubscribeNamespaceError{RequestID: id, Code: wire.SubscribeNamespaceErrorCode(code(wire.TypeSubscribeNamespaceError)), Reason: reason}
	default: // PUBLISH
		return &wire.PublishError{RequestID: id, Code: wire.PublishErrorCode(code(wire.TypePublishError)), Reason: reason}
	}
}

// authorizeSetup applies the tokens of the peer's setup message
// (CLIENT_SETUP on the server side, SERVER_SETUP on the client side). Only
// a server relaxes an over-size REGISTER into a USE_VALUE (§9.3.2.5: it
// is the client's, sent before it knew the server's cache size); a
// client receiving one in SERVER_SETUP closes the session with
// AUTH_TOKEN_CACHE_OVERFLOW, as for any other message.
func (s *Session) authorizeSetup(m wire.Message, params wire.Parameters) error {
	tokens, reqErr, sessErr := s.tokens.resolve(params, !s.client)
	if sessErr != nil {
		return sessErr
	}
	if reqErr == nil && s.cfg.Authorize != nil {
		reqErr = s.callbackErr("Authorizer", func() error { return s.cfg.Authorize(s, m, tokens) })
	}
	var se *wire.SessionError
	if errors.As(reqErr, &se) {
		return se
	}
	if reqErr != nil {
		code := wire.Unauthorized
		switch {
		case errors.Is(reqErr, errCallbackPanicked):
			code = wire.InternalError
		case errors.Is(reqErr, ErrExpiredToken):
			code = wire.ExpiredAuthToken
		case errors.Is(reqErr, ErrMalformedToken):
			code = wire.MalformedAuthToken
		}
		return &wire.SessionError{Code: code, Reason: reqErr.Error()}
	}
	return nil
}
