package wxsim

import (
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"short AES key", func(c *Config) { c.EncodingAESKey = "abc" }, "EncodingAESKey"},
		{"bad WeCom key", func(c *Config) { c.WeComAESKey = strings.Repeat("!", 43) }, "WeComAESKey"},
		{"token too short", func(c *Config) { c.Token = "ab" }, "Token"},
		{"unknown format", func(c *Config) { c.PushFormat = "yaml" }, "PushFormat"},
		{"unknown keyword type", func(c *Config) { c.SubscribeTemplates = map[string][]string{"t": {"colour1"}} }, "colour1"},
		{"duplicate staff", func(c *Config) { c.StaffUserIDs = []string{"Ahua", "ahua"} }, "twice"},
		{"duplicate kf", func(c *Config) { c.KFAccounts = append(c.KFAccounts, c.KFAccounts[0]) }, "open_kfid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			_, err := New(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if _, err := New(DefaultConfig(), nil); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
}
