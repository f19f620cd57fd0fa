// Package apibase is the layer under the mini-program and WeCom clients:
// the one HTTP transport every WeChat/WeCom request of the process goes
// through, the error type those requests fail with, and the few hand-written
// calls silenceper/wechat does not offer.
//
// # Why a process-wide transport
//
// silenceper/wechat v2.1.10 hard-codes https://api.weixin.qq.com and
// https://qyapi.weixin.qq.com and sends every request through the
// package-global util.DefaultHTTPClient. The only way to point it at the
// simulator (or any other base) is therefore a RoundTripper installed in that
// global, which rewrites the two hosts. Install puts ours there; Register
// says where a host should go.
//
// Limitation: because the rewrite is process-wide, one process talks to ONE
// WeChat base and ONE WeCom base. Register refuses a second, different base
// for a host while the first is registered; tests that start their own
// simulator register in turn (t.Cleanup unregisters) and must not run in
// parallel with each other. Production uses the real hosts and needs no
// rewrite at all.
//
// # Contexts for SDK calls that take none
//
// Most silenceper calls (customer-service send, subscribe send, WeCom
// message/send, media upload, OAuth) build their request with
// context.Background(), so a caller's deadline would not reach the wire.
// Bind registers the caller's context under a small id that rides in the
// request URL next to the access token (silenceper formats the token into the
// URL verbatim); the transport strips the marker and runs the request under
// that context, so a cancelled call really stops waiting and the server sees
// the connection go. If the marker ever reached WeChat (someone replaced
// util.DefaultHTTPClient), it is an unknown query parameter, which the
// servers ignore.
package apibase

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// The hosts silenceper hard-codes, and their production bases.
const (
	WeChatHost = "api.weixin.qq.com"
	WeComHost  = "qyapi.weixin.qq.com"

	DefaultWeChatBase = "https://" + WeChatHost
	DefaultWeComBase  = "https://" + WeComHost
)

// Timeouts of the process transport. ClientTimeout bounds a whole exchange
// including the body: WeCom files may be 20 MB. Callers bound single calls
// tighter with their context.
const (
	DialTimeout           = 5 * time.Second
	TLSHandshakeTimeout   = 5 * time.Second
	ResponseHeaderTimeout = 30 * time.Second
	ClientTimeout         = 90 * time.Second
)

// callParam is the query parameter that carries a Bind id.
const callParam = "tgcall"

// The process-wide state. It exists only because silenceper's client is a
// package global: this is the one place that owns it.
var (
	installMu sync.Mutex
	process   *Transport
	client    *http.Client
)

// Install makes the process transport silenceper's util.DefaultHTTPClient
// (again, if something replaced it) and returns that client, which
// hand-written calls use too so that every request takes the same path.
// Clients call it in their constructor, before any request runs.
func Install() *http.Client {
	installMu.Lock()
	defer installMu.Unlock()
	ensureLocked()
	if util.DefaultHTTPClient != client {
		util.DefaultHTTPClient = client
	}
	return client
}

func ensureLocked() {
	if process == nil {
		process = newTransport()
		client = &http.Client{Transport: process, Timeout: ClientTimeout}
	}
}

// installed returns the process transport without touching silenceper's
// global: writing it while SDK calls read it would be a data race.
func installed() (*Transport, *http.Client) {
	installMu.Lock()
	defer installMu.Unlock()
	ensureLocked()
	return process, client
}

// Register points host (WeChatHost, WeComHost) at base for the whole
// process: a request for https://host/path?query goes to base+path?query.
// base may carry a path prefix ("http://127.0.0.1:8081/wechat"). Registering
// the production base is allowed and recorded, so that a client configured
// for production and one configured for a simulator cannot silently share a
// process. Registering the base that is already registered adds a reference;
// a different one is refused with an error naming both. The returned func
// drops the reference (it is safe to call more than once).
func Register(host, base string) (unregister func(), err error) {
	t, _ := installed()
	return t.register(host, base)
}

// Registered returns the base host is pointed at, or "" if none.
func Registered(host string) string {
	t, _ := installed()
	return t.registered(host)
}

// Transport is the RoundTripper behind util.DefaultHTTPClient.
type Transport struct {
	next http.RoundTripper

	mu     sync.RWMutex
	routes map[string]*route

	nextID atomic.Uint64
	calls  sync.Map // uint64 → *Call
}

type route struct {
	base *url.URL // nil: the production host, no rewrite
	raw  string
	refs int
}

var _ http.RoundTripper = (*Transport)(nil)

func newTransport() *Transport {
	next := http.DefaultTransport.(*http.Transport).Clone()
	next.DialContext = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	next.TLSHandshakeTimeout = TLSHandshakeTimeout
	next.ResponseHeaderTimeout = ResponseHeaderTimeout
	next.IdleConnTimeout = 90 * time.Second
	// Sends fan out to WeChat concurrently (outbox workers); the default of
	// two idle connections per host would reconnect constantly.
	next.MaxIdleConnsPerHost = 32
	return &Transport{next: next, routes: map[string]*route{}}
}

// ParseBase validates an API base URL: absolute http(s), no query or
// fragment. The result has no trailing slash.
func ParseBase(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(base), "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("apibase: API base %q: %v", base, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("apibase: API base %q: want an http:// or https:// URL", base)
	case u.Host == "":
		return nil, fmt.Errorf("apibase: API base %q: no host", base)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, fmt.Errorf("apibase: API base %q: must not carry a query, fragment or user info", base)
	}
	return u, nil
}

func (t *Transport) register(host, base string) (func(), error) {
	u, err := ParseBase(base)
	if err != nil {
		return nil, err
	}
	raw := u.String()
	if u.Scheme == "https" && u.Host == host && u.Path == "" {
		u = nil // production: nothing to rewrite
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.routes[host]
	switch {
	case ok && r.raw != raw:
		return nil, fmt.Errorf("apibase: %s is already pointed at %s in this process; cannot also point it at %s (one base per host per process)", host, r.raw, raw)
	case ok:
		r.refs++
	default:
		r = &route{base: u, raw: raw, refs: 1}
		t.routes[host] = r
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if r.refs--; r.refs == 0 && t.routes[host] == r {
				delete(t.routes, host)
			}
		})
	}, nil
}

func (t *Transport) registered(host string) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if r, ok := t.routes[host]; ok {
		return r.raw
	}
	return ""
}

func (t *Transport) target(host string) *url.URL {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if r, ok := t.routes[host]; ok {
		return r.base
	}
	return nil
}

// RoundTrip strips a Bind marker (running the request under the bound
// context), rewrites a registered host, and sends the request.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	marked := strings.Contains(req.URL.RawQuery, callParam+"=")
	base := t.target(req.URL.Host)
	if !marked && base == nil {
		return t.next.RoundTrip(req)
	}
	ctx, release := t.callContext(req)
	if ctx == nil {
		ctx = req.Context()
	}
	out := req.Clone(ctx) // a RoundTripper must not modify the caller's request
	out.URL.RawQuery = stripParam(out.URL.RawQuery, callParam)
	if base != nil {
		rewrite(out, base)
	}
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		release()
		return nil, err
	}
	// The merged context must live until the body is read.
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// rewrite sends r to base + r's path, keeping the query.
func rewrite(r *http.Request, base *url.URL) {
	u := r.URL
	if u.RawPath != "" {
		u.RawPath = base.EscapedPath() + u.RawPath
	}
	u.Path = base.Path + u.Path
	u.Scheme, u.Host = base.Scheme, base.Host
	r.Host = "" // the Host header follows the new URL
}

// stripParam removes name=… from a raw query without re-encoding the rest.
func stripParam(rawQuery, name string) string {
	if !strings.Contains(rawQuery, name+"=") {
		return rawQuery
	}
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		if !strings.HasPrefix(p, name+"=") {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "&")
}

// callContext finds the Bind marker of req. It returns nil when there is
// none, or when the call has already ended. The returned context is done when
// either the bound one or the request's own (http.Client's timeout) is.
func (t *Transport) callContext(req *http.Request) (context.Context, func()) {
	v := req.URL.Query().Get(callParam)
	if v == "" {
		return nil, func() {}
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, func() {}
	}
	c, ok := t.calls.Load(id)
	if !ok {
		return nil, func() {}
	}
	merged, cancel := context.WithCancelCause(c.(*Call).ctx)
	stop := context.AfterFunc(req.Context(), func() { cancel(context.Cause(req.Context())) })
	return merged, func() { stop(); cancel(nil) }
}

type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// Call is a caller's context registered for an SDK call that takes none.
type Call struct {
	t   *Transport
	id  uint64
	ctx context.Context
}

// Bind registers ctx for one SDK call. Pass Token(tok) to silenceper instead
// of tok, and Release when the call returns.
func Bind(ctx context.Context) *Call {
	t, _ := installed()
	c := &Call{t: t, id: t.nextID.Add(1), ctx: ctx}
	t.calls.Store(c.id, c)
	return c
}

// Token returns tok with the call's marker appended, for silenceper to put
// into the request URL (it formats "…?access_token=%s").
func (c *Call) Token(tok string) string {
	return tok + "&" + callParam + "=" + strconv.FormatUint(c.id, 10)
}

// Release forgets the call.
func (c *Call) Release() { c.t.calls.Delete(c.id) }

// ErrNotInstalled is returned by Check when silenceper's client is not ours.
var ErrNotInstalled = errors.New("apibase: util.DefaultHTTPClient was replaced; WeChat requests bypass the API base and call contexts")

// Check reports whether silenceper still uses the process client; /readyz
// or a start-up check can call it after wiring.
func Check() error {
	installMu.Lock()
	defer installMu.Unlock()
	if client == nil || util.DefaultHTTPClient != client {
		return ErrNotInstalled
	}
	return nil
}
