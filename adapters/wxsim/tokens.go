package wxsim

import (
	"time"
)

// Hosts the simulator plays. Tokens of one host are unknown to the other.
const (
	hostWeChat = "wechat"
	hostWeCom  = "wecom"
)

type tokenKind int

const (
	tokenDefault tokenKind = iota // mini-program /cgi-bin/token
	tokenStable                   // mini-program /cgi-bin/stable_token
	tokenWeCom                    // WeCom /cgi-bin/gettoken
)

type accessToken struct {
	value     string
	host      string
	kind      tokenKind
	issuedAt  time.Time
	expiresAt time.Time
	// supersededUntil is set when a newer token of the same kind replaced
	// this one: it stays usable until then, and is "not the latest" (40001)
	// afterwards rather than expired.
	supersededUntil time.Time
	revoked         bool // InvalidateTokens, or force_refresh
}

// tokenStore tracks every token ever issued. It is guarded by Simulator.mu.
type tokenStore struct {
	all        map[string]*accessToken
	latest     map[tokenKind]*accessToken
	forceDay   string
	forceCount int
	lastForce  time.Time
}

func newTokenStore() *tokenStore {
	return &tokenStore{all: map[string]*accessToken{}, latest: map[tokenKind]*accessToken{}}
}

func (ts *tokenStore) mint(kind tokenKind, host, value string, now time.Time, ttl time.Duration) *accessToken {
	t := &accessToken{value: value, host: host, kind: kind, issuedAt: now, expiresAt: now.Add(ttl)}
	ts.all[value] = t
	ts.latest[kind] = t
	return t
}

// usable reports whether t is still accepted on business calls at now.
func (t *accessToken) usable(now time.Time) bool {
	if t.revoked || !now.Before(t.expiresAt) {
		return false
	}
	return t.supersededUntil.IsZero() || now.Before(t.supersededUntil)
}

// check validates a token presented on a business call of host (rule S2).
func (ts *tokenStore) check(host, value string, now time.Time) *wxError {
	invalid := errInvalidCredential
	invalidMsg := "invalid credential, access_token is invalid or not latest"
	if host == hostWeCom {
		invalid, invalidMsg = errInvalidToken, "invalid access_token"
	}
	if value == "" {
		return wxErr(errMissingToken, "access_token missing")
	}
	t, ok := ts.all[value]
	if !ok || t.host != host || t.revoked {
		return wxErr(invalid, "%s", invalidMsg)
	}
	// Whichever end came first decides the answer: a token replaced before
	// its natural end is "not latest"; one that simply ran out is expired.
	superseded := !t.supersededUntil.IsZero() && t.supersededUntil.Before(t.expiresAt)
	switch {
	case superseded && !now.Before(t.supersededUntil):
		return wxErr(invalid, "%s", invalidMsg)
	case !now.Before(t.expiresAt):
		return wxErr(errTokenExpired, "access_token expired")
	}
	return nil
}

// revokeAll is the "server invalidated the token early" control hook.
func (ts *tokenStore) revokeAll() {
	for _, t := range ts.all {
		t.revoked = true
	}
}

// expire makes value expire now (the ExpireToken fault).
func (ts *tokenStore) expire(value string, now time.Time) {
	if t, ok := ts.all[value]; ok && now.Before(t.expiresAt) {
		t.expiresAt = now
	}
}
