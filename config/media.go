package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// TURN is the embedded TURN server (media.StartTURN): off while Addr is
// empty.
type TURN struct {
	Addr     string // UDP listen address, e.g. ":3478"
	Secret   string // shared secret of the REST credentials
	PublicIP string // the address clients reach the server at
	Realm    string
}

// Enabled reports whether the embedded TURN server runs.
func (t TURN) Enabled() bool { return t.Addr != "" }

// RelayIP is the address relays are announced on: TURN_PUBLIC_IP, or the
// listen address's own IP when it names one.
func (t TURN) RelayIP() string {
	if t.PublicIP != "" {
		return t.PublicIP
	}
	host, _, err := net.SplitHostPort(t.Addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return ""
}

// RecordingsPath is where room recordings are kept: RECORDINGS_DIR, or
// "recordings" beside the SQLite database (./data/recordings otherwise).
func (c Config) RecordingsPath() string {
	if c.RecordingsDir != "" {
		return c.RecordingsDir
	}
	if driver, dsn, err := ParseDatabaseURL(c.DatabaseURL); err == nil && driver == "sqlite" && dsn != ":memory:" {
		return filepath.Join(filepath.Dir(dsn), "recordings")
	}
	return filepath.Join(".", "data", "recordings")
}

func setTURNAddr(c *Config, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port (example: :3478)", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535 (0: any free port)", port)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q is not an IP address (leave it out to listen on all)", host)
	}
	c.TURN.Addr = v
	return nil
}

func setTURNSecret(c *Config, v string) error {
	if len(v) < 16 {
		return errors.New("must be at least 16 characters")
	}
	c.TURN.Secret = v
	return nil
}

func setTURNPublicIP(c *Config, v string) error {
	ip := net.ParseIP(v)
	if ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("%q is not a usable IP address", v)
	}
	c.TURN.PublicIP = ip.String()
	return nil
}

func setTURNRealm(c *Config, v string) error {
	if len(v) > 64 || strings.ContainsAny(v, " \t\"\\") {
		return errors.New("must be at most 64 characters without spaces, quotes or backslashes")
	}
	c.TURN.Realm = v
	return nil
}

// setICEServers takes a comma-separated list of stun:, stuns:, turn: and
// turns: URLs. The check is that of media.ValidICEURL, repeated here so
// config keeps to the standard library and YAML.
func setICEServers(c *Config, v string) error {
	var urls []string
	for _, u := range strings.Split(v, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if err := checkICEURL(u); err != nil {
			return err
		}
		urls = append(urls, u)
	}
	c.ICEServers = urls
	return nil
}

func checkICEURL(u string) error {
	scheme, rest, _ := strings.Cut(u, ":")
	switch scheme {
	case "stun", "stuns", "turn", "turns":
	default:
		return fmt.Errorf("%q is not a stun:, stuns:, turn: or turns: URL", u)
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery && (!strings.HasPrefix(scheme, "turn") || (query != "transport=udp" && query != "transport=tcp")) {
		return fmt.Errorf("%q: only TURN URLs take a query, and only transport=udp or transport=tcp", u)
	}
	if strings.ContainsAny(hostport, "@/") {
		return fmt.Errorf("%q: credentials or a path do not belong in an ICE URL (TURN credentials come from TACKLEGATE_TURN_SECRET)", u)
	}
	host := hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not 1-65535", u, p)
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, " []") {
		return fmt.Errorf("%q has no valid host", u)
	}
	return nil
}

func setRecordingsDir(c *Config, v string) error {
	c.RecordingsDir = filepath.Clean(v)
	return nil
}

// validateMedia checks the TURN settings that only make sense together.
func (c *Config) validateMedia(source func(string) string) []error {
	var errs []error
	field := func(name, reason string) {
		errs = append(errs, &FieldError{Var: Prefix + name, Source: source(Prefix + name), Reason: reason})
	}
	if c.TURN.Enabled() {
		if c.TURN.Secret == "" {
			field("TURN_SECRET", "is not set; it is required when "+Prefix+"TURN_ADDR is set")
		}
		if c.TURN.RelayIP() == "" {
			field("TURN_PUBLIC_IP", "is not set; it is required when "+Prefix+"TURN_ADDR listens on all addresses (the address clients reach the relay at)")
		}
	}
	relay := false
	for _, u := range c.ICEServers {
		relay = relay || strings.HasPrefix(u, "turn")
	}
	if relay && c.TURN.Secret == "" {
		field("TURN_SECRET", "is not set; TURN URLs in "+Prefix+"ICE_SERVERS get credentials made with it")
	}
	// (An invalid TURN_ADDR is reported already; its secret is not unused.)
	if c.raw[Prefix+"TURN_ADDR"] == "" && !relay && c.TURN.Secret != "" {
		field("TURN_SECRET", "is set but nothing uses it: set "+Prefix+"TURN_ADDR or a turn: URL in "+Prefix+"ICE_SERVERS")
	}
	return errs
}
