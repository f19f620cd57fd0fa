package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestMediaSettings(t *testing.T) {
	const secret = "0123456789abcdef"
	tests := []struct {
		name     string
		vars     map[string]string
		wantVars []string // the variables named in errors; none = valid
		check    func(t *testing.T, c Config)
	}{
		{"off by default", nil, nil, func(t *testing.T, c Config) {
			if c.TURN.Enabled() || len(c.ICEServers) != 0 || c.TURN.Realm != "tacklegate" {
				t.Errorf("TURN = %+v, ICE = %v", c.TURN, c.ICEServers)
			}
		}},
		{"turn on", map[string]string{"TACKLEGATE_TURN_ADDR": ":3478", "TACKLEGATE_TURN_SECRET": secret, "TACKLEGATE_TURN_PUBLIC_IP": "203.0.113.7"}, nil, func(t *testing.T, c Config) {
			if !c.TURN.Enabled() || c.TURN.RelayIP() != "203.0.113.7" || c.TURN.Secret != secret {
				t.Errorf("TURN = %+v", c.TURN)
			}
		}},
		{"turn addr names the ip", map[string]string{"TACKLEGATE_TURN_ADDR": "198.51.100.2:3478", "TACKLEGATE_TURN_SECRET": secret}, nil, func(t *testing.T, c Config) {
			if c.TURN.RelayIP() != "198.51.100.2" {
				t.Errorf("RelayIP = %q", c.TURN.RelayIP())
			}
		}},
		{"turn without secret or ip", map[string]string{"TACKLEGATE_TURN_ADDR": ":3478"}, []string{"TACKLEGATE_TURN_SECRET", "TACKLEGATE_TURN_PUBLIC_IP"}, nil},
		{"turn bad addr", map[string]string{"TACKLEGATE_TURN_ADDR": "turn.example.com:3478"}, []string{"TACKLEGATE_TURN_ADDR"}, nil},
		{"turn bad port", map[string]string{"TACKLEGATE_TURN_ADDR": ":70000", "TACKLEGATE_TURN_SECRET": secret}, []string{"TACKLEGATE_TURN_ADDR"}, nil},
		{"short secret", map[string]string{"TACKLEGATE_TURN_ADDR": "127.0.0.1:3478", "TACKLEGATE_TURN_SECRET": "short"}, []string{"TACKLEGATE_TURN_SECRET", "TACKLEGATE_TURN_SECRET"}, nil},
		{"public ip unspecified", map[string]string{"TACKLEGATE_TURN_ADDR": ":3478", "TACKLEGATE_TURN_SECRET": secret, "TACKLEGATE_TURN_PUBLIC_IP": "0.0.0.0"}, []string{"TACKLEGATE_TURN_PUBLIC_IP", "TACKLEGATE_TURN_PUBLIC_IP"}, nil},
		{"secret alone", map[string]string{"TACKLEGATE_TURN_SECRET": secret}, []string{"TACKLEGATE_TURN_SECRET"}, nil},
		{"ice servers", map[string]string{"TACKLEGATE_ICE_SERVERS": " stun:stun.example.com:3478 , turns:turn.example.com:443?transport=tcp", "TACKLEGATE_TURN_SECRET": secret}, nil, func(t *testing.T, c Config) {
			if strings.Join(c.ICEServers, "|") != "stun:stun.example.com:3478|turns:turn.example.com:443?transport=tcp" {
				t.Errorf("ICEServers = %q", c.ICEServers)
			}
		}},
		{"turn url needs the secret", map[string]string{"TACKLEGATE_ICE_SERVERS": "turn:turn.example.com"}, []string{"TACKLEGATE_TURN_SECRET"}, nil},
		{"ice url with credentials", map[string]string{"TACKLEGATE_ICE_SERVERS": "turn:user:pw@turn.example.com"}, []string{"TACKLEGATE_ICE_SERVERS"}, nil},
		{"ice url not ice", map[string]string{"TACKLEGATE_ICE_SERVERS": "https://turn.example.com"}, []string{"TACKLEGATE_ICE_SERVERS"}, nil},
		{"realm with space", map[string]string{"TACKLEGATE_TURN_REALM": "a b"}, []string{"TACKLEGATE_TURN_REALM"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load("", env(tc.vars))
			var got []string
			for _, e := range unjoin(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a FieldError", e)
				}
				got = append(got, fe.Var)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantVars, ",") {
				t.Fatalf("errors name %v, want %v (%v)", got, tc.wantVars, err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestRecordingsPath(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{nil, filepath.Join("data", "recordings")},
		{map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite:///var/lib/tg/tg.db"}, "/var/lib/tg/recordings"},
		{map[string]string{"TACKLEGATE_DATABASE_URL": "postgres://u@127.0.0.1/db"}, filepath.Join("data", "recordings")},
		{map[string]string{"TACKLEGATE_RECORDINGS_DIR": "/srv/rec/"}, "/srv/rec"},
	} {
		c, err := Load("", env(tc.vars))
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Clean(c.RecordingsPath()); got != filepath.Clean(tc.want) {
			t.Errorf("%v: RecordingsPath = %q, want %q", tc.vars, got, tc.want)
		}
	}
}
