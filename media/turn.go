package media

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme is HMAC-SHA1; HMAC keeps SHA-1 safe here
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// The embedded TURN server (pion/turn v5, the current major) relays media
// for clients whose network allows no direct UDP path to the SFU: a
// strict corporate NAT, a hotel Wi-Fi. It listens on one address, UDP and
// TCP (for networks that let no UDP out), and hands out UDP relay
// addresses on the configured public IP.
//
// Credentials are the TURN REST API scheme (draft-uberti-behave-turn-rest,
// the one coturn's use-auth-secret speaks): username "<expiry unix>:<user>",
// password base64(HMAC-SHA1(secret, username)). The gateway mints them
// with a room token; the server checks them statelessly, so a leaked pair
// stops working when it expires and nothing needs revoking.
//
// A relay only reaches this machine: a client may open permissions to the
// public IP and this host's own interface addresses, never to another
// address. An open relay would let anyone with a room token send UDP from
// our address to any host, private networks behind us included.
// Permissions are per address, not port (RFC 8656), so a relay can reach
// any UDP port on this machine's addresses: run no UDP service on them
// that should not hear from the internet (a resolver on a private
// interface), or bind it to loopback, which relays never reach.

// TURNConfig configures StartTURN.
type TURNConfig struct {
	// Addr is the UDP address to listen on, e.g. ":3478".
	Addr string
	// PublicIP is the address clients reach this machine at. Relay
	// addresses carry it, and relays listen on it if it is local, else on
	// every interface (a 1:1 NAT in front).
	PublicIP string
	// Realm is the TURN realm; default "tacklegate".
	Realm string
	// Secret is the shared secret of the REST credentials.
	Secret []byte
	// AllowLoopbackPeers lets clients relay to 127.0.0.0/8 and ::1. Only
	// for tests and benchmarks whose SFU listens on loopback.
	AllowLoopbackPeers bool
	// MaxAllocationsPerUser bounds the relays one credential user (a room
	// participant) holds at once; default 10. A browser makes one per
	// ICE generation and local address family.
	MaxAllocationsPerUser int

	Logger *slog.Logger
	Now    func() time.Time
}

// TURNServer is a running embedded TURN server.
type TURNServer struct {
	cfg  TURNConfig
	log  *slog.Logger
	conn net.PacketConn
	srv  *turn.Server
	ip   net.IP

	tcpAllocs atomic.Int64 // allocations made over a TCP connection, ever

	mu        sync.Mutex
	perUser   map[string]int
	localIPs  []net.IP
	closeOnce sync.Once
	closeErr  error
}

// StartTURN listens on cfg.Addr and serves TURN until Close.
func StartTURN(cfg TURNConfig) (*TURNServer, error) {
	if cfg.Addr == "" {
		return nil, errors.New("media: TURN needs a listen address")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("media: TURN needs a shared secret")
	}
	ip := net.ParseIP(cfg.PublicIP)
	if ip == nil {
		return nil, fmt.Errorf("media: TURN public IP %q is not an IP address", cfg.PublicIP)
	}
	if cfg.Realm == "" {
		cfg.Realm = "tacklegate"
	}
	if cfg.MaxAllocationsPerUser == 0 {
		cfg.MaxAllocationsPerUser = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &TURNServer{cfg: cfg, log: cfg.Logger.With("component", "turn"), ip: ip, perUser: map[string]int{}}
	t.localIPs = interfaceIPs()

	network := "udp4"
	if ip.To4() == nil {
		network = "udp6"
	}
	conn, ln, err := listenTURN(network, cfg.Addr)
	if err != nil {
		return nil, err
	}
	t.conn = conn

	relayBind := "0.0.0.0"
	if network == "udp6" {
		relayBind = "::"
	}
	if t.isLocal(ip) {
		relayBind = ip.String()
	}
	t.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: pionLogs{t.log},
		AuthHandler:   t.authenticate,
		QuotaHandler:  t.quota,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
				t.mu.Lock()
				t.perUser[user]++
				t.mu.Unlock()
				if _, ok := src.(*net.TCPAddr); ok {
					t.tcpAllocs.Add(1)
				}
				t.log.Debug("relay allocated", "client", src.String(), "user", user, "relay", relay.String())
			},
			OnAllocationDeleted: func(src, _ net.Addr, _, user, _ string) {
				t.mu.Lock()
				if t.perUser[user]--; t.perUser[user] <= 0 {
					delete(t.perUser, user)
				}
				t.mu.Unlock()
				t.log.Debug("relay released", "client", src.String(), "user", user)
			},
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: ip,
				Address:      relayBind,
			},
			PermissionHandler: t.permit,
		}},
		ListenerConfigs: []turn.ListenerConfig{{
			Listener: ln,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: ip,
				Address:      relayBind,
			},
			PermissionHandler: t.permit,
		}},
	})
	if err != nil {
		_ = conn.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("media: TURN: %w", err)
	}
	t.log.Info("TURN listening", "addr", conn.LocalAddr().String(), "public_ip", ip.String(), "realm", cfg.Realm)
	return t, nil
}

// listenTURN opens the UDP socket and, on the same port, the TCP listener
// for TURN over TCP, for networks that let no UDP out (the relayed media
// is still UDP on our side). With port 0 the UDP port is picked first; if
// that port is taken for TCP, it tries another.
func listenTURN(network, addr string) (net.PacketConn, net.Listener, error) {
	tcpNetwork := "tcp4"
	if network == "udp6" {
		tcpNetwork = "tcp6"
	}
	_, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		conn, err := net.ListenPacket(network, addr) //nolint:noctx // a listener for the life of the process
		if err != nil {
			return nil, nil, fmt.Errorf("media: TURN cannot listen on %s: %w", addr, err)
		}
		ln, err := net.Listen(tcpNetwork, conn.LocalAddr().String()) //nolint:noctx // as above
		if err == nil {
			return conn, ln, nil
		}
		_ = conn.Close()
		if port != "0" || try == 4 {
			return nil, nil, fmt.Errorf("media: TURN cannot listen on TCP %s: %w", conn.LocalAddr(), err)
		}
	}
}

// Addr is the address the server listens on.
func (t *TURNServer) Addr() net.Addr { return t.conn.LocalAddr() }

// URLs are the ICE server URLs clients use for this server: STUN (the
// server answers binding requests too) and TURN over UDP and over TCP, on
// the public IP.
func (t *TURNServer) URLs() []string {
	port := t.conn.LocalAddr().(*net.UDPAddr).Port
	hp := net.JoinHostPort(t.ip.String(), strconv.Itoa(port))
	return []string{"stun:" + hp, "turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
}

// Allocations is how many relays are open.
func (t *TURNServer) Allocations() int { return t.srv.AllocationCount() }

// Close stops the server and every relay.
func (t *TURNServer) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.srv.Close() })
	return t.closeErr
}

// authenticate checks a REST credential: not expired, and the password
// pion will check the message integrity with is the one we would have
// issued. It runs for every authenticated request (allocate, refresh,
// permission, channel bind), so a relay stops being refreshed once its
// credential expires.
func (t *TURNServer) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	user, ok := checkTURNUsername(ra.Username, t.cfg.Now())
	if !ok || ra.Realm != t.cfg.Realm {
		t.log.Info("TURN credential refused", "client", addrString(ra.SrcAddr), "user", user, "method", ra.Method.String())
		return "", nil, false
	}
	pw := turnPassword(t.cfg.Secret, ra.Username)
	return user, turn.GenerateAuthKey(ra.Username, ra.Realm, pw), true
}

// quota refuses an allocation past MaxAllocationsPerUser. user is the id
// authenticate returned. Allocations are counted when made and released
// (two requests racing may both pass: the bound is against hoarding, not
// exact).
func (t *TURNServer) quota(user, _ string, _ net.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perUser[user] >= t.cfg.MaxAllocationsPerUser {
		t.log.Warn("TURN allocation quota reached", "user", user)
		return false
	}
	return true
}

// permit lets a relay send only to this machine (see the package note).
func (t *TURNServer) permit(client net.Addr, peer net.IP) bool {
	if peer.Equal(t.ip) || (t.cfg.AllowLoopbackPeers && peer.IsLoopback()) {
		return true
	}
	if !peer.IsLoopback() && t.isLocal(peer) {
		return true
	}
	t.log.Info("TURN permission refused", "client", addrString(client), "peer", peer.String())
	return false
}

func (t *TURNServer) isLocal(ip net.IP) bool {
	for _, l := range t.localIPs {
		if l.Equal(ip) {
			return true
		}
	}
	return false
}

func interfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// TURNCredentials returns a REST credential for user that expires at
// expires: username "<expiry unix>:<user>", password
// base64(HMAC-SHA1(secret, username)).
func TURNCredentials(secret []byte, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return username, turnPassword(secret, username)
}

func turnPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// checkTURNUsername parses "<expiry unix>:<user>" and reports whether it
// is still valid at now.
func checkTURNUsername(username string, now time.Time) (user string, ok bool) {
	exp, user, found := strings.Cut(username, ":")
	if !found || user == "" {
		return "", false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || n <= now.Unix() {
		return user, false
	}
	return user, true
}

// ICEServers hands clients the ICE servers to use: STUN URLs as they
// are, TURN URLs (turn:, turns:) with a fresh REST credential each time.
// The embedded server's URLs belong here, and so do external TURN servers
// that share the secret (coturn with use-auth-secret).
type ICEServers struct {
	URLs   []string
	Secret []byte
	TTL    time.Duration // how long a credential lasts; default 2 h
	Now    func() time.Time
}

// For returns the ICE servers for user, credentials included.
func (s *ICEServers) For(user string) []webrtc.ICEServer {
	if s == nil || len(s.URLs) == 0 {
		return nil
	}
	now, ttl := time.Now, s.TTL
	if s.Now != nil {
		now = s.Now
	}
	if ttl <= 0 {
		ttl = 2 * time.Hour
	}
	var stun, relay []string
	for _, u := range s.URLs {
		if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
			relay = append(relay, u)
		} else {
			stun = append(stun, u)
		}
	}
	var out []webrtc.ICEServer
	if len(stun) > 0 {
		out = append(out, webrtc.ICEServer{URLs: stun})
	}
	if len(relay) > 0 && len(s.Secret) > 0 {
		name, pw := TURNCredentials(s.Secret, user, now().Add(ttl))
		out = append(out, webrtc.ICEServer{URLs: relay, Username: name, Credential: pw})
	}
	return out
}

// ValidICEURL reports whether u is a STUN or TURN URL a browser accepts
// (RFC 7064/7065): stun:, stuns:, turn: or turns:, a host, an optional
// port and, for TURN, an optional ?transport=udp|tcp.
func ValidICEURL(u string) error {
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok {
		return fmt.Errorf("%q has no scheme (stun:, stuns:, turn: or turns:)", u)
	}
	switch scheme {
	case "stun", "stuns", "turn", "turns":
	default:
		return fmt.Errorf("%q: scheme %q is not stun, stuns, turn or turns", u, scheme)
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if !strings.HasPrefix(scheme, "turn") {
			return fmt.Errorf("%q: a STUN URL takes no query", u)
		}
		if query != "transport=udp" && query != "transport=tcp" {
			return fmt.Errorf("%q: the only query is transport=udp or transport=tcp", u)
		}
	}
	if strings.Contains(hostport, "@") || strings.Contains(hostport, "/") {
		return fmt.Errorf("%q: credentials or a path do not belong in an ICE URL", u)
	}
	host := hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not 1-65535", u, p)
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, " []") {
		return fmt.Errorf("%q has no valid host", u)
	}
	return nil
}
