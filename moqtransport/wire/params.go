package wire

import (
	"fmt"
	"io"
	"time"
)

// KeyValue is a key-value pair (§1.4.2). An even Type carries a varint in
// Value; an odd Type carries up to 65535 bytes in Bytes.
type KeyValue struct {
	Type  uint64
	Value uint64
	Bytes []byte
}

// IsBytes reports whether the pair's type carries bytes (odd types).
func (kv KeyValue) IsBytes() bool { return kv.Type&1 == 1 }

func (kv KeyValue) String() string {
	if kv.IsBytes() {
		return fmt.Sprintf("0x%x=%q", kv.Type, kv.Bytes)
	}
	return fmt.Sprintf("0x%x=%d", kv.Type, kv.Value)
}

// AppendKeyValue appends one key-value pair.
func AppendKeyValue(b []byte, kv KeyValue) ([]byte, error) {
	w := builder{b: b}
	w.keyValue(kv)
	return w.b, w.err
}

func (w *builder) keyValue(kv KeyValue) {
	w.varint("key-value type", kv.Type)
	if kv.IsBytes() {
		if kv.Value != 0 {
			w.fail(fmt.Errorf("wire: key-value type 0x%x is odd and carries bytes, not a varint", kv.Type))
			return
		}
		if len(kv.Bytes) > MaxKVPValueLen {
			w.fail(violation("value of key-value 0x%x is %d bytes, limit %d", kv.Type, len(kv.Bytes), MaxKVPValueLen))
			return
		}
		w.lengthPrefixed("key-value value", kv.Bytes, MaxKVPValueLen)
		return
	}
	if kv.Bytes != nil {
		w.fail(fmt.Errorf("wire: key-value type 0x%x is even and carries a varint, not bytes", kv.Type))
		return
	}
	w.varint("key-value value", kv.Value)
}

// ParseKeyValue parses one key-value pair. The returned Bytes alias b.
func ParseKeyValue(b []byte) (KeyValue, int, error) {
	p := parser{b: b}
	kv := p.keyValue()
	return kv, p.n, p.err
}

// keyValue reads one pair; odd-typed values alias the input.
func (p *parser) keyValue() KeyValue {
	kv := KeyValue{Type: p.varint()}
	if p.err != nil {
		return KeyValue{}
	}
	if kv.IsBytes() {
		l := p.varint()
		if p.err == nil && l > MaxKVPValueLen {
			p.fail(violation("value of key-value 0x%x is %d bytes, limit %d", kv.Type, l, MaxKVPValueLen))
		}
		kv.Bytes = p.bytes(l)
		if kv.Bytes == nil && p.err == nil {
			kv.Bytes = []byte{}
		}
	} else {
		kv.Value = p.varint()
	}
	return kv
}

// Parameter types. Setup parameters (§9.3.2) and version-specific message
// parameters (§9.2.1) live in separate namespaces, so their numbers overlap.
const (
	SetupParamPath                  = 0x01
	SetupParamMaxRequestID          = 0x02
	SetupParamAuthorizationToken    = 0x03
	SetupParamMaxAuthTokenCacheSize = 0x04
	SetupParamAuthority             = 0x05
	SetupParamMOQTImplementation    = 0x07 // 0x05 in the draft-14 text, a clash with AUTHORITY; 0x07 per the editor's fix and draft-15
	ParamDeliveryTimeout            = 0x02
	ParamAuthorizationToken         = 0x03
	ParamMaxCacheDuration           = 0x04
)

// maxParamsPrealloc caps the capacity reserved for a parsed parameter list.
const maxParamsPrealloc = 16

// Parameters is a list of key-value pairs carried by a control message,
// written as a count followed by the pairs. Unknown parameters are kept so
// that a relay can forward them.
type Parameters []KeyValue

// Get returns the first parameter of type t.
func (ps Parameters) Get(t uint64) (KeyValue, bool) {
	for _, kv := range ps {
		if kv.Type == t {
			return kv, true
		}
	}
	return KeyValue{}, false
}

// Varint returns the value of the first even-typed parameter t.
func (ps Parameters) Varint(t uint64) (uint64, bool) {
	kv, ok := ps.Get(t)
	if !ok || kv.IsBytes() {
		return 0, false
	}
	return kv.Value, true
}

// Bytes returns the value of the first odd-typed parameter t.
func (ps Parameters) Bytes(t uint64) ([]byte, bool) {
	kv, ok := ps.Get(t)
	if !ok || !kv.IsBytes() {
		return nil, false
	}
	return kv.Bytes, true
}

// WithVarint returns ps with parameter t set to v, replacing earlier ones.
func (ps Parameters) WithVarint(t, v uint64) Parameters {
	return append(ps.without(t), KeyValue{Type: t, Value: v})
}

// WithBytes returns ps with parameter t set to v, replacing earlier ones.
func (ps Parameters) WithBytes(t uint64, v []byte) Parameters {
	if v == nil {
		v = []byte{}
	}
	return append(ps.without(t), KeyValue{Type: t, Bytes: v})
}

func (ps Parameters) without(t uint64) Parameters {
	out := ps[:0:0]
	for _, kv := range ps {
		if kv.Type != t {
			out = append(out, kv)
		}
	}
	return out
}

// DeliveryTimeout returns the DELIVERY TIMEOUT parameter.
func (ps Parameters) DeliveryTimeout() (time.Duration, bool) {
	v, ok := ps.Varint(ParamDeliveryTimeout)
	return msDuration(v), ok
}

// MaxCacheDuration returns the MAX_CACHE_DURATION parameter.
func (ps Parameters) MaxCacheDuration() (time.Duration, bool) {
	v, ok := ps.Varint(ParamMaxCacheDuration)
	return msDuration(v), ok
}

func msDuration(ms uint64) time.Duration {
	if ms > uint64(1<<63-1)/uint64(time.Millisecond) {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(ms) * time.Millisecond
}

// AuthorizationTokens decodes every AUTHORIZATION TOKEN parameter (the type
// is the same in setup and in requests).
func (ps Parameters) AuthorizationTokens() ([]Token, error) {
	var out []Token
	for _, kv := range ps {
		if kv.Type != ParamAuthorizationToken {
			continue
		}
		t, err := ParseToken(kv.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// paramRule says how a message treats one known parameter type.
type paramRule uint8

const (
	paramOnce  paramRule = iota + 1 // at most one instance
	paramToken                      // may repeat; value must decode as a Token
)

// paramRules maps a parameter type to its rule for one message type. A known
// parameter not in a message's rules is ignored there, as the draft says.
type paramRules map[uint64]paramRule

var (
	setupParamRules = paramRules{
		SetupParamPath:                  paramOnce,
		SetupParamMaxRequestID:          paramOnce,
		SetupParamAuthorizationToken:    paramToken,
		SetupParamMaxAuthTokenCacheSize: paramOnce,
		SetupParamAuthority:             paramOnce,
		SetupParamMOQTImplementation:    paramOnce,
	}
	// The version-specific parameter table of §9.2.1.
	rulesSubscribe   = paramRules{ParamDeliveryTimeout: paramOnce, ParamAuthorizationToken: paramToken}
	rulesSubscribeOK = paramRules{ParamDeliveryTimeout: paramOnce, ParamMaxCacheDuration: paramOnce}
	rulesPublish     = paramRules{ParamDeliveryTimeout: paramOnce, ParamAuthorizationToken: paramToken, ParamMaxCacheDuration: paramOnce}
	rulesPublishOK   = paramRules{ParamDeliveryTimeout: paramOnce}
	rulesAuthOnly    = paramRules{ParamAuthorizationToken: paramToken}
	rulesFetchOK     = paramRules{ParamMaxCacheDuration: paramOnce}
)

// check applies the rules to one parameter: no duplicate of a
// non-repeatable parameter (PROTOCOL_VIOLATION) and tokens that decode
// (KEY_VALUE_FORMATTING_ERROR). seen has bit i set once type i (< 64) was
// seen.
func (rules paramRules) check(kv KeyValue, seen *uint64) error {
	switch rules[kv.Type] {
	case paramOnce:
		if *seen&(1<<kv.Type) != 0 {
			return violation("parameter 0x%x appears more than once", kv.Type)
		}
		*seen |= 1 << kv.Type
	case paramToken:
		if _, err := ParseToken(kv.Bytes); err != nil {
			return err
		}
	}
	return nil
}

// params writes a count-prefixed parameter list, refusing what the
// receiver would reject under rules.
func (w *builder) params(ps Parameters, rules paramRules) {
	w.varint("parameter count", uint64(len(ps)))
	var seen uint64
	for _, kv := range ps {
		if err := rules.check(kv, &seen); err != nil {
			w.fail(err)
			return
		}
		w.keyValue(kv)
	}
}

// params reads a count-prefixed parameter list, copying values out of the
// input, and enforces rules: no duplicates of a non-repeatable parameter
// (PROTOCOL_VIOLATION) and tokens that decode (KEY_VALUE_FORMATTING_ERROR).
func (p *parser) params(rules paramRules) Parameters {
	n := p.varint()
	if p.err != nil {
		return nil
	}
	// Each pair takes at least two bytes: bound the count before allocating.
	if n > uint64(p.remaining()/2) {
		p.fail(io.ErrUnexpectedEOF)
		return nil
	}
	if n == 0 {
		return nil
	}
	ps := make(Parameters, 0, min(n, maxParamsPrealloc))
	var seen uint64
	for range n {
		kv := p.keyValue()
		if p.err != nil {
			return nil
		}
		if err := rules.check(kv, &seen); err != nil {
			p.fail(err)
			return nil
		}
		if kv.Bytes != nil {
			kv.Bytes = append([]byte{}, kv.Bytes...)
		}
		ps = append(ps, kv)
	}
	return ps
}

// TokenAliasType says how an AUTHORIZATION TOKEN uses its alias (§9.2.1.1).
type TokenAliasType uint64

// Token alias types.
const (
	TokenDelete   TokenAliasType = 0x0
	TokenRegister TokenAliasType = 0x1
	TokenUseAlias TokenAliasType = 0x2
	TokenUseValue TokenAliasType = 0x3
)

func (t TokenAliasType) String() string {
	switch t {
	case TokenDelete:
		return "DELETE"
	case TokenRegister:
		return "REGISTER"
	case TokenUseAlias:
		return "USE_ALIAS"
	case TokenUseValue:
		return "USE_VALUE"
	}
	return fmt.Sprintf("0x%x", uint64(t))
}

// Token is the value of an AUTHORIZATION TOKEN parameter. Alias is present
// for DELETE, REGISTER and USE_ALIAS; Type and Value for REGISTER and
// USE_VALUE.
type Token struct {
	AliasType TokenAliasType
	Alias     uint64
	Type      uint64
	Value     []byte
}

// AppendToken appends the token's encoding (the parameter value, without
// the key-value header).
func AppendToken(b []byte, t Token) ([]byte, error) {
	w := builder{b: b}
	w.varint("token alias type", uint64(t.AliasType))
	switch t.AliasType {
	case TokenDelete, TokenUseAlias:
		w.varint("token alias", t.Alias)
	case TokenRegister:
		w.varint("token alias", t.Alias)
		w.varint("token type", t.Type)
		w.b = append(w.b, t.Value...)
	case TokenUseValue:
		w.varint("token type", t.Type)
		w.b = append(w.b, t.Value...)
	default:
		w.fail(fmt.Errorf("wire: unknown token alias type %s", t.AliasType))
	}
	return w.b, w.err
}

// TokenParam returns an AUTHORIZATION TOKEN parameter carrying t.
func TokenParam(t Token) (KeyValue, error) {
	v, err := AppendToken(nil, t)
	if err != nil {
		return KeyValue{}, err
	}
	return KeyValue{Type: ParamAuthorizationToken, Bytes: v}, nil
}

// ParseToken decodes an AUTHORIZATION TOKEN value. A value that does not
// decode is a KEY_VALUE_FORMATTING_ERROR. The returned Value aliases b.
func ParseToken(b []byte) (Token, error) {
	p := parser{b: b}
	t := Token{AliasType: TokenAliasType(p.varint())}
	switch t.AliasType {
	case TokenDelete, TokenUseAlias:
		t.Alias = p.varint()
	case TokenRegister:
		t.Alias = p.varint()
		t.Type = p.varint()
		t.Value = p.bytes(uint64(p.remaining()))
	case TokenUseValue:
		t.Type = p.varint()
		t.Value = p.bytes(uint64(p.remaining()))
	default:
		if p.err == nil {
			return Token{}, kvFormatting("authorization token has unknown alias type %s", t.AliasType)
		}
	}
	if p.err != nil {
		return Token{}, kvFormatting("authorization token is truncated")
	}
	if p.remaining() != 0 {
		return Token{}, kvFormatting("authorization token %s has %d trailing bytes", t.AliasType, p.remaining())
	}
	return t, nil
}
