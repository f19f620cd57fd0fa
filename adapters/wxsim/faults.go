package wxsim

import (
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault is an injected misbehaviour of one endpoint (rule S4).
//
// When it fires: with Times > 0 it fires on the next Times calls and is then
// removed; with Probability > 0 each call fires with that probability (drawn
// from the seeded generator, so a run can be replayed); with both set, each
// call draws and each firing uses up one of Times; with neither, it fires on
// every call until cleared.
//
// What it does, in this order: wait Latency; answer HTTPStatus (a bare 5xx
// page, as a load balancer would) if set; answer Errcode if set; mark the
// caller's access token expired (ExpireToken: the "server invalidated it
// early" case, seen as 42001); for push endpoints, DropPush loses the callback
// entirely (never sent, never retried).
type Fault struct {
	Latency     time.Duration `json:"latency"`
	HTTPStatus  int           `json:"http_status,omitempty"`
	Errcode     int           `json:"errcode,omitempty"`
	ExpireToken bool          `json:"expire_token,omitempty"`
	DropPush    bool          `json:"drop_push,omitempty"`
	Probability float64       `json:"probability,omitempty"`
	Times       int           `json:"times,omitempty"`
}

// Faults is the per-endpoint fault table. Keys are simulator paths such as
// "/wechat/cgi-bin/message/custom/send", the push targets PushWeChat and
// PushWeCom, or a prefix ending in "*" ("/wecom/*", "/pay/*", "*").
type Faults struct {
	mu     sync.Mutex
	rng    *rand.Rand
	byName map[string]*Fault
}

// Push "endpoints" for faults on callbacks to the gateway.
const (
	PushWeChat = "push:wechat"
	PushWeCom  = "push:wecom"
)

func newFaults(seed int64) *Faults {
	return &Faults{
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x7ac1e)),
		byName: map[string]*Fault{},
	}
}

// Set installs f for endpoint, replacing any previous fault there.
func (fs *Faults) Set(endpoint string, f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.byName[endpoint] = &f
}

// Clear removes the fault of endpoint; Clear("") removes all.
func (fs *Faults) Clear(endpoint string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if endpoint == "" {
		clear(fs.byName)
		return
	}
	delete(fs.byName, endpoint)
}

// List returns the installed faults by endpoint.
func (fs *Faults) List() map[string]Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make(map[string]Fault, len(fs.byName))
	for k, f := range fs.byName {
		out[k] = *f
	}
	return out
}

// fire decides whether a fault applies to this call of endpoint and uses up
// one of its Times if so. The exact key wins over "*" prefixes, and a longer
// prefix over a shorter one.
func (fs *Faults) fire(endpoint string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key, f := fs.lookup(endpoint)
	if f == nil {
		return Fault{}, false
	}
	if f.Probability > 0 && fs.rng.Float64() >= f.Probability {
		return Fault{}, false
	}
	out := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(fs.byName, key)
		}
	}
	return out, true
}

func (fs *Faults) lookup(endpoint string) (string, *Fault) {
	if f, ok := fs.byName[endpoint]; ok {
		return endpoint, f
	}
	var prefixes []string
	for k := range fs.byName {
		if strings.HasSuffix(k, "*") && strings.HasPrefix(endpoint, strings.TrimSuffix(k, "*")) {
			prefixes = append(prefixes, k)
		}
	}
	if len(prefixes) == 0 {
		return "", nil
	}
	sort.Slice(prefixes, func(i, j int) bool { return len(prefixes[i]) > len(prefixes[j]) })
	return prefixes[0], fs.byName[prefixes[0]]
}
