// Package config loads tacklegate's one typed Config from an optional YAML
// file overridden by TACKLEGATE_* environment variables.
//
// Every setting is declared once, in the settings table below: its variable
// name, its file key (the variable name without the prefix, lower-cased), what
// it means, its default and whether it is a secret. Load parses and validates
// everything before anything else runs, so a bad value stops start-up with a
// message naming the variable and nothing is written.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Prefix starts every environment variable tacklegate reads.
const Prefix = "TACKLEGATE_"

// Config is the whole configuration. Zero values of optional groups mean the
// channel is switched off (see Channels).
type Config struct {
	HTTPAddr        string
	PublicURL       string
	DatabaseURL     string
	RedisURL        string
	DataKey         []byte // 32 bytes, AES-256 key for evidence at rest
	CallbackMaxSkew time.Duration

	LogFormat       string // "text" or "json"
	LogLevel        string // "debug", "info", "warn", "error"
	AutoMigrate     bool   // serve applies pending migrations at start
	ShutdownTimeout time.Duration
	BodyLimit       int // bytes
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	// CallRingTimeout: a video or voice call nobody answers by then is missed.
	CallRingTimeout time.Duration

	WeChat    WeChat
	WeCom     WeCom
	WeChatPay WeChatPay

	OwnerUsername string
	OwnerPassword string // bootstrap only: seeds the owner's login on first start
	MemberWebhook MemberWebhook
	RentalWebhook RentalWebhook
	// OwnerWeComUserID is the owner's WeCom userid: the gateway tells the
	// owner there when a feature rollout pauses itself.
	OwnerWeComUserID string

	// AssistantMode says when the AI customer service answers: "unattended"
	// (while nobody is on duty; the default), "first" (every message, people
	// take over on handoff) or "off". The words are those of
	// gateway/assistant.ParseMode.
	AssistantMode string
	LLM           LLM
	Chat          Chat

	TURN          TURN     // the embedded TURN server; off unless TURN_ADDR is set
	ICEServers    []string // extra STUN/TURN URLs handed to clients
	RecordingsDir string   // where room recordings are kept; see RecordingsPath

	raw map[string]string // the merged textual values, for Redacted
}

// WeChat holds the mini-program credentials and message-push settings.
type WeChat struct {
	AppID, AppSecret, Token, AESKey string
	APIBase                         string
}

// WeCom holds the WeCom self-built app settings.
type WeCom struct {
	CorpID  string
	AgentID int
	Secret  string
	Token   string
	AESKey  string
	APIBase string
	// OAuthBase replaces https://open.weixin.qq.com in the web-OAuth links
	// that sign staff in to the console and the room page.
	OAuthBase string
}

// WeChatPay holds the WeChat Pay v3 merchant settings.
type WeChatPay struct {
	MchID                 string
	SerialNo              string
	PrivateKeyFile        string
	APIv3Key              string
	PlatformPublicKeyFile string
	PlatformSerial        string
	APIBase               string
}

// MemberWebhook is the shop's other membership system, told about members
// created and linked here.
type MemberWebhook struct {
	URL    string
	Secret string
}

// RentalWebhook is the shop's existing rental system, told about every
// order event (created, paid, picked up, returned, settled, cancelled,
// expired).
type RentalWebhook struct {
	URL    string
	Secret string
}

// Chat configures the message bridge's staff side (see gateway/presence.go
// and gateway/bridge_reassign.go).
type Chat struct {
	// SupportHours: "shop" (the opening hours in the owner's settings),
	// "always", or "HH:MM-HH:MM" every day, Shanghai time.
	SupportHours string
	// ReassignAfter moves a conversation to another staff member when its
	// customer has waited this long for an answer; 0 never.
	ReassignAfter time.Duration
	// SubscribeTemplateID is the subscribe-message template of the 48-hour
	// fallback; "" the demo's, "off" none.
	SubscribeTemplateID string
	// RetentionDays: the content of conversations resolved longer ago is
	// destroyed (crypto-shredding; the chains stay verifiable); 0 keeps it.
	RetentionDays int
}

// LLM is the optional OpenAI-compatible model the assistant phrases answers
// with (see adapters/llm). Without it the assistant answers from retrieval.
type LLM struct {
	BaseURL     string
	APIKey      string
	Model       string
	VisionModel string
	Timeout     time.Duration
}

// Enabled reports whether a model is configured (base URL and model set).
func (l LLM) Enabled() bool { return l.BaseURL != "" && l.Model != "" }

// Enabled reports whether the mini-program channel is configured.
func (w WeChat) Enabled() bool { return w.AppID != "" }

// Enabled reports whether the WeCom channel is configured.
func (w WeCom) Enabled() bool { return w.CorpID != "" }

// Enabled reports whether WeChat Pay is configured.
func (p WeChatPay) Enabled() bool { return p.MchID != "" }

// Channels reports which upstream channels are on, by name.
func (c Config) Channels() map[string]bool {
	return map[string]bool{
		"wechat":    c.WeChat.Enabled(),
		"wecom":     c.WeCom.Enabled(),
		"wechatpay": c.WeChatPay.Enabled(),
	}
}

// DisabledChannels lists the channels that are off, sorted.
func (c Config) DisabledChannels() []string {
	var off []string
	for name, on := range c.Channels() {
		if !on {
			off = append(off, name)
		}
	}
	sort.Strings(off)
	return off
}

// setting is one row of the configuration table.
type setting struct {
	env    string // full variable name
	def    string // default, as typed by a user
	secret bool
	help   string
	set    func(c *Config, v string) error // parses v into c; v is never empty
}

// key is the name of the setting in a config file.
func (s setting) key() string { return strings.ToLower(strings.TrimPrefix(s.env, Prefix)) }

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration, min time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 30s, 5m, 1h)", v)
		}
		if d < min {
			return fmt.Errorf("%s is below the minimum %s", d, min)
		}
		*p(c) = d
		return nil
	}
}

// settings is the table of every variable. README's configuration table is
// generated from the same rows (see Table).
var settings = []setting{
	{env: Prefix + "HTTP_ADDR", def: ":8080", help: "listen address (host:port)", set: func(c *Config, v string) error {
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			return fmt.Errorf("%q is not host:port (examples: :8080, 127.0.0.1:8080)", v)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
		if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			return fmt.Errorf("host %q is neither an IP address nor a host name", host)
		}
		c.HTTPAddr = v
		return nil
	}},
	{env: Prefix + "PUBLIC_URL", def: "", help: "external base URL used in links sent to WeChat/WeCom (default http://localhost:PORT)", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an absolute http(s) URL", v)
		}
		c.PublicURL = strings.TrimRight(v, "/")
		return nil
	}},
	{env: Prefix + "DATABASE_URL", def: "sqlite:///./data/tacklegate.db", help: "sqlite:///path/file.db or postgres://user@host:port/db", set: func(c *Config, v string) error {
		if _, _, err := ParseDatabaseURL(v); err != nil {
			return err
		}
		c.DatabaseURL = v
		return nil
	}},
	{env: Prefix + "REDIS_URL", secret: true, help: "optional redis://host:port/db; enables shared token cache, presence and pub/sub", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return errors.New("is not a redis:// or rediss:// URL")
		}
		c.RedisURL = v
		return nil
	}},
	{env: Prefix + "DATA_KEY", secret: true, help: "base64 of 32 random bytes: the key for evidence encrypted at rest (demo generates one)", set: func(c *Config, v string) error {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return errors.New("is not valid base64 (make one with: head -c 32 /dev/urandom | base64)")
		}
		if len(k) != 32 {
			return fmt.Errorf("decodes to %d bytes, want 32 (make one with: head -c 32 /dev/urandom | base64)", len(k))
		}
		c.DataKey = k
		return nil
	}},
	{env: Prefix + "CALLBACK_MAX_SKEW", def: "5m", help: "max age of a callback timestamp; 0 disables the check", set: dur(func(c *Config) *time.Duration { return &c.CallbackMaxSkew }, 0)},
	{env: Prefix + "LOG_FORMAT", def: "text", help: "text or json", set: func(c *Config, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("%q is neither text nor json", v)
		}
		c.LogFormat = v
		return nil
	}},
	{env: Prefix + "LOG_LEVEL", def: "info", help: "debug, info, warn or error", set: func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("%q is not one of debug, info, warn, error", v)
	}},
	{env: Prefix + "AUTO_MIGRATE", def: "true", help: "serve applies pending schema migrations at start", set: func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		c.AutoMigrate = b
		return nil
	}},
	{env: Prefix + "SHUTDOWN_TIMEOUT", def: "15s", help: "how long in-flight requests may finish on SIGINT/SIGTERM", set: dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, time.Second)},
	{env: Prefix + "HTTP_BODY_LIMIT", def: "16MiB", help: "largest request body accepted (callbacks have their own, smaller limit)", set: func(c *Config, v string) error {
		n, err := parseBytes(v)
		if err != nil {
			return err
		}
		if n < 1024 {
			return fmt.Errorf("%s is below the minimum 1KiB", v)
		}
		c.BodyLimit = n
		return nil
	}},
	{env: Prefix + "HTTP_READ_TIMEOUT", def: "30s", help: "time to read a whole request", set: dur(func(c *Config) *time.Duration { return &c.ReadTimeout }, time.Second)},
	{env: Prefix + "HTTP_WRITE_TIMEOUT", def: "60s", help: "time to write a whole response", set: dur(func(c *Config) *time.Duration { return &c.WriteTimeout }, time.Second)},
	{env: Prefix + "CALL_RING_TIMEOUT", def: "45s", help: "a video or voice call nobody answers within this time is recorded as missed", set: dur(func(c *Config) *time.Duration { return &c.CallRingTimeout }, 5*time.Second)},

	{env: Prefix + "OWNER_USERNAME", def: "owner", help: "the owner's login name", set: func(c *Config, v string) error {
		if len(v) > 64 || !isAlnum(strings.NewReplacer("_", "", "-", "", ".", "").Replace(v)) {
			return errors.New("must be at most 64 letters, digits, _ - or .")
		}
		c.OwnerUsername = v
		return nil
	}},
	{env: Prefix + "OWNER_PASSWORD", secret: true, help: "the owner's first password (at least 10 characters); used only while the owner has none, then changed in the owner console (demo generates one)", set: func(c *Config, v string) error {
		if len([]rune(v)) < 10 {
			return errors.New("must be at least 10 characters")
		}
		c.OwnerPassword = v
		return nil
	}},
	{env: Prefix + "OWNER_WECOM_USERID", help: "optional: the owner's WeCom userid, told when a feature rollout pauses itself (guard rails)", set: func(c *Config, v string) error {
		if len(v) > 64 || !isAlnum(strings.NewReplacer("_", "", "-", "", ".", "", "@", "").Replace(v)) {
			return errors.New("must be at most 64 letters, digits, _ - . or @")
		}
		c.OwnerWeComUserID = v
		return nil
	}},
	{env: Prefix + "MEMBER_WEBHOOK_URL", help: "optional: the shop's other membership system, told about new and linked members (HMAC-signed POST)", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an absolute http(s) URL", v)
		}
		c.MemberWebhook.URL = v
		return nil
	}},
	{env: Prefix + "MEMBER_WEBHOOK_SECRET", secret: true, help: "HMAC-SHA256 key for the member webhook's X-Tacklegate-Signature (at least 16 characters)", set: func(c *Config, v string) error {
		if len(v) < 16 {
			return errors.New("must be at least 16 characters")
		}
		c.MemberWebhook.Secret = v
		return nil
	}},
	{env: Prefix + "RENTAL_WEBHOOK_URL", help: "optional: the shop's existing rental system, told about every order event (HMAC-signed POST from the outbox)", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an absolute http(s) URL", v)
		}
		c.RentalWebhook.URL = v
		return nil
	}},
	{env: Prefix + "RENTAL_WEBHOOK_SECRET", secret: true, help: "HMAC-SHA256 key for the rental webhook's X-Tacklegate-Signature (at least 16 characters)", set: func(c *Config, v string) error {
		if len(v) < 16 {
			return errors.New("must be at least 16 characters")
		}
		c.RentalWebhook.Secret = v
		return nil
	}},

	{env: Prefix + "ASSISTANT_MODE", def: "unattended", help: "when the AI customer service answers customers: unattended (while nobody is on duty), first (every message until it hands over to a person) or off", set: func(c *Config, v string) error {
		switch m := strings.ToLower(v); m {
		case "unattended", "first", "off":
			c.AssistantMode = m
			return nil
		}
		return fmt.Errorf("%q is not one of unattended, first, off", v)
	}},
	{env: Prefix + "LLM_BASE_URL", help: "optional OpenAI-compatible API base (the part before /chat/completions, e.g. https://api.openai.com/v1); with LLM_MODEL a model phrases the assistant's answers", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("%q is not an absolute http(s) URL without a query", v)
		}
		c.LLM.BaseURL = strings.TrimRight(v, "/")
		return nil
	}},
	{env: Prefix + "LLM_API_KEY", secret: true, help: "bearer token for the model server; may be empty for a local one", set: str(func(c *Config) *string { return &c.LLM.APIKey })},
	{env: Prefix + "LLM_MODEL", help: "model for text questions; required with LLM_BASE_URL", set: str(func(c *Config) *string { return &c.LLM.Model })},
	{env: Prefix + "LLM_VISION_MODEL", help: "optional model that accepts images (customers' photos); without it photos go to a person", set: str(func(c *Config) *string { return &c.LLM.VisionModel })},
	{env: Prefix + "CHAT_SUPPORT_HOURS", def: "shop", help: "when staff answer customers: shop (the opening hours in the owner's settings), always, or HH:MM-HH:MM every day (Shanghai time); outside them customers are told when staff are back", set: func(c *Config, v string) error {
		if v == "shop" || v == "always" || (len(v) == 11 && v[2] == ':' && v[5] == '-' && v[8] == ':' && v[:5] < v[6:]) {
			c.Chat.SupportHours = v
			return nil
		}
		return fmt.Errorf("%q is not shop, always or HH:MM-HH:MM (e.g. 09:00-21:00)", v)
	}},
	{env: Prefix + "CHAT_REASSIGN_AFTER", def: "10m", help: "a conversation whose customer has waited this long for the assigned staff member's answer goes to another staff member who is available (both are told); 0 never", set: dur(func(c *Config) *time.Duration { return &c.Chat.ReassignAfter }, 0)},
	{env: Prefix + "CHAT_RETENTION_DAYS", def: "0", help: "destroy the content of conversations resolved more than this many days ago (their keys are shredded; the hash chains stay verifiable); 0 keeps everything", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 36500 {
			return fmt.Errorf("%q is not a number of days (0 keeps everything)", v)
		}
		c.Chat.RetentionDays = n
		return nil
	}},
	{env: Prefix + "CHAT_SUBSCRIBE_TEMPLATE_ID", help: "subscribe-message template telling a customer outside WeChat's 48-hour window that a reply waits (thing1, time2, character_string3, thing4); empty: the demo template; off: none", set: func(c *Config, v string) error {
		if v != "off" && (len(v) < 20 || strings.ContainsAny(v, " \t/")) {
			return fmt.Errorf("%q does not look like a subscribe-message template id (or off)", v)
		}
		c.Chat.SubscribeTemplateID = v
		return nil
	}},
	{env: Prefix + "LLM_TIMEOUT", def: "15s", help: "longest a model may take for one whole answer; past it the retrieval answer is sent instead", set: dur(func(c *Config) *time.Duration { return &c.LLM.Timeout }, time.Second)},

	{env: Prefix + "TURN_ADDR", help: "optional address of the embedded TURN server, UDP and TCP, for clients with no direct path to the video rooms (e.g. :3478); unset switches it off", set: setTURNAddr},
	{env: Prefix + "TURN_SECRET", secret: true, help: "shared secret of the short-lived TURN credentials (at least 16 characters); also valid for external TURN servers in ICE_SERVERS (coturn use-auth-secret)", set: setTURNSecret},
	{env: Prefix + "TURN_PUBLIC_IP", help: "the IP address clients reach the TURN server at, announced as the relay address; required unless TURN_ADDR names one", set: setTURNPublicIP},
	{env: Prefix + "TURN_REALM", def: "tacklegate", help: "TURN realm", set: setTURNRealm},
	{env: Prefix + "ICE_SERVERS", help: "extra STUN/TURN URLs for clients, comma-separated (e.g. stun:stun.example.com:3478,turns:turn.example.com:443?transport=tcp); TURN ones get credentials made with TURN_SECRET", set: setICEServers},
	{env: Prefix + "RECORDINGS_DIR", help: "where room recordings are kept, encrypted (default: recordings beside the SQLite database, else ./data/recordings)", set: setRecordingsDir},

	{env: Prefix + "WECHAT_APP_ID", help: "mini-program AppID (wx…); unset switches the mini-program channel off", set: func(c *Config, v string) error {
		if !strings.HasPrefix(v, "wx") || len(v) < 10 {
			return fmt.Errorf("%q does not look like a mini-program AppID (wx followed by 16 characters)", v)
		}
		c.WeChat.AppID = v
		return nil
	}},
	{env: Prefix + "WECHAT_APP_SECRET", secret: true, help: "mini-program AppSecret", set: str(func(c *Config) *string { return &c.WeChat.AppSecret })},
	{env: Prefix + "WECHAT_TOKEN", secret: true, help: "message-push Token (3–32 letters and digits)", set: tokenSetter(func(c *Config) *string { return &c.WeChat.Token })},
	{env: Prefix + "WECHAT_AES_KEY", secret: true, help: "message-push EncodingAESKey (43 characters)", set: aesKeySetter(func(c *Config) *string { return &c.WeChat.AESKey })},
	{env: Prefix + "WECHAT_API_BASE", def: "https://api.weixin.qq.com", help: "mini-program API base URL (the simulator's in demo and tests)", set: baseURLSetter(func(c *Config) *string { return &c.WeChat.APIBase })},

	{env: Prefix + "WECOM_CORP_ID", help: "WeCom CorpID (ww…); unset switches the WeCom channel off", set: str(func(c *Config) *string { return &c.WeCom.CorpID })},
	{env: Prefix + "WECOM_AGENT_ID", help: "WeCom self-built app AgentId (a number)", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive number", v)
		}
		c.WeCom.AgentID = n
		return nil
	}},
	{env: Prefix + "WECOM_SECRET", secret: true, help: "WeCom app Secret", set: str(func(c *Config) *string { return &c.WeCom.Secret })},
	{env: Prefix + "WECOM_TOKEN", secret: true, help: "WeCom callback Token", set: tokenSetter(func(c *Config) *string { return &c.WeCom.Token })},
	{env: Prefix + "WECOM_AES_KEY", secret: true, help: "WeCom callback EncodingAESKey (43 characters)", set: aesKeySetter(func(c *Config) *string { return &c.WeCom.AESKey })},
	{env: Prefix + "WECOM_API_BASE", def: "https://qyapi.weixin.qq.com", help: "WeCom API base URL", set: baseURLSetter(func(c *Config) *string { return &c.WeCom.APIBase })},
	{env: Prefix + "WECOM_OAUTH_BASE", def: "https://open.weixin.qq.com", help: "WeCom web-OAuth base URL (staff sign-in links; the simulator's in demo)", set: baseURLSetter(func(c *Config) *string { return &c.WeCom.OAuthBase })},

	{env: Prefix + "WECHATPAY_MCH_ID", help: "WeChat Pay merchant id; unset switches WeChat Pay off", set: func(c *Config, v string) error {
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("%q is not a merchant id (digits only)", v)
		}
		c.WeChatPay.MchID = v
		return nil
	}},
	{env: Prefix + "WECHATPAY_SERIAL_NO", help: "serial number of the merchant API certificate (hex)", set: str(func(c *Config) *string { return &c.WeChatPay.SerialNo })},
	{env: Prefix + "WECHATPAY_PRIVATE_KEY_FILE", help: "path of the merchant API private key (PEM)", set: fileSetter(func(c *Config) *string { return &c.WeChatPay.PrivateKeyFile })},
	{env: Prefix + "WECHATPAY_API_V3_KEY", secret: true, help: "APIv3 key (32 characters)", set: func(c *Config, v string) error {
		if len(v) != 32 {
			return fmt.Errorf("has %d characters, want exactly 32", len(v))
		}
		c.WeChatPay.APIv3Key = v
		return nil
	}},
	{env: Prefix + "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", help: "path of the WeChat Pay public key or platform certificate (PEM)", set: fileSetter(func(c *Config) *string { return &c.WeChatPay.PlatformPublicKeyFile })},
	{env: Prefix + "WECHATPAY_PLATFORM_SERIAL", help: "its id: PUB_KEY_ID_… or the platform certificate serial", set: str(func(c *Config) *string { return &c.WeChatPay.PlatformSerial })},
	{env: Prefix + "WECHATPAY_API_BASE", def: "https://api.mch.weixin.qq.com", help: "WeChat Pay API base URL", set: baseURLSetter(func(c *Config) *string { return &c.WeChatPay.APIBase })},
}

func tokenSetter(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if len(v) < 3 || len(v) > 32 || !isAlnum(v) {
			return errors.New("must be 3 to 32 letters and digits")
		}
		*p(c) = v
		return nil
	}
}

func aesKeySetter(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if len(v) != 43 {
			return fmt.Errorf("has %d characters, want exactly 43", len(v))
		}
		if k, err := base64.StdEncoding.DecodeString(v + "="); err != nil || len(k) != 32 {
			return errors.New("is not a valid EncodingAESKey (43 base64 characters decoding to 32 bytes)")
		}
		*p(c) = v
		return nil
	}
}

func baseURLSetter(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("%q is not an absolute http(s) URL without a query", v)
		}
		*p(c) = strings.TrimRight(v, "/")
		return nil
	}
}

func fileSetter(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		st, err := os.Stat(v)
		if err != nil {
			return fmt.Errorf("cannot read %s: %v", v, errors.Unwrap(err))
		}
		if st.IsDir() {
			return fmt.Errorf("%s is a folder, want a PEM file", v)
		}
		*p(c) = v
		return nil
	}
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func parseBytes(v string) (int, error) {
	units := []struct {
		suffix string
		mult   int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil || n < 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q is not a size (examples: 512KiB, 16MiB)", v)
}

// ParseDatabaseURL splits a TACKLEGATE_DATABASE_URL into a driver name
// ("sqlite" or "postgres") and the DSN that driver takes.
func ParseDatabaseURL(v string) (driver, dsn string, err error) {
	switch {
	case strings.HasPrefix(v, "sqlite://"):
		rest, _, _ := strings.Cut(strings.TrimPrefix(v, "sqlite://"), "?")
		switch {
		case rest == ":memory:":
			return "sqlite", rest, nil
		case rest == "" || rest == "/":
			return "", "", fmt.Errorf("%q names no database file (example: sqlite:///./data/tacklegate.db)", v)
		case strings.HasPrefix(rest, "/./"), strings.HasPrefix(rest, "/../"):
			// sqlite:///./data/x.db: the third slash ends the empty host; the path is relative.
			return "sqlite", "./" + filepath.Clean(rest[1:]), nil
		}
		return "sqlite", filepath.Clean(rest), nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return "", "", errors.New("is not a valid postgres:// URL (example: postgres://user@127.0.0.1:5432/db?sslmode=disable)")
		}
		return "postgres", v, nil
	}
	return "", "", errors.New("must start with sqlite:// or postgres://")
}

// FieldError is a validation failure of one variable.
type FieldError struct {
	Var    string // e.g. TACKLEGATE_HTTP_ADDR
	Source string // "environment" or the config file path
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s (from %s) %s", e.Var, e.Source, e.Reason)
}

// Load builds a Config from the defaults, then the YAML file at path (if path
// is not empty), then the environment as seen through getenv. It returns every
// problem at once, each a *FieldError, joined with errors.Join.
func Load(path string, getenv func(string) string) (Config, error) {
	var c Config
	values := map[string]string{}
	sources := map[string]string{}
	for _, s := range settings {
		if s.def != "" {
			values[s.env] = s.def
			sources[s.env] = "default"
		}
	}
	if path != "" {
		fileVals, err := readFile(path)
		if err != nil {
			return c, err
		}
		for k, v := range fileVals {
			values[k] = v
			sources[k] = path
		}
	}
	for _, s := range settings {
		if v, ok := lookup(getenv, s.env); ok {
			values[s.env] = v
			sources[s.env] = "environment"
		}
	}
	c.raw = values
	var errs []error
	for _, s := range settings {
		v := values[s.env]
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, &FieldError{Var: s.env, Source: sources[s.env], Reason: err.Error()})
		}
	}
	errs = append(errs, c.validateGroups(sources)...)
	if c.PublicURL == "" && c.HTTPAddr != "" {
		c.PublicURL = defaultPublicURL(c.HTTPAddr)
	}
	return c, errors.Join(errs...)
}

// lookup reads a variable; an empty value counts as unset so that
// `TACKLEGATE_X= tacklegate serve` restores the default.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := strings.TrimSpace(getenv(name))
	return v, v != ""
}

func defaultPublicURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// validateGroups checks settings that only make sense together: a channel is
// either absent (switched off) or complete.
func (c *Config) validateGroups(sources map[string]string) []error {
	source := func(name string) string {
		if s := sources[name]; s != "" {
			return s
		}
		return "environment or config file"
	}
	var errs []error
	need := func(on bool, group string, pairs ...any) {
		if !on {
			return
		}
		for i := 0; i < len(pairs); i += 2 {
			name, val := pairs[i].(string), pairs[i+1]
			missing := false
			switch v := val.(type) {
			case string:
				missing = v == ""
			case int:
				missing = v == 0
			}
			if missing {
				errs = append(errs, &FieldError{Var: Prefix + name, Source: source(Prefix + name), Reason: "is not set; it is required when " + group + " is set"})
			}
		}
	}
	need(c.WeChat.Enabled(), Prefix+"WECHAT_APP_ID", "WECHAT_APP_SECRET", c.WeChat.AppSecret)
	if (c.WeChat.Token == "") != (c.WeChat.AESKey == "") && c.WeChat.Enabled() {
		errs = append(errs, &FieldError{Var: Prefix + "WECHAT_TOKEN", Source: source(Prefix + "WECHAT_TOKEN"), Reason: "and " + Prefix + "WECHAT_AES_KEY go together: set both for message push, or neither"})
	}
	need(c.WeCom.Enabled(), Prefix+"WECOM_CORP_ID", "WECOM_AGENT_ID", c.WeCom.AgentID, "WECOM_SECRET", c.WeCom.Secret, "WECOM_TOKEN", c.WeCom.Token, "WECOM_AES_KEY", c.WeCom.AESKey)
	need(c.WeChatPay.Enabled(), Prefix+"WECHATPAY_MCH_ID", "WECHATPAY_SERIAL_NO", c.WeChatPay.SerialNo,
		"WECHATPAY_PRIVATE_KEY_FILE", c.WeChatPay.PrivateKeyFile, "WECHATPAY_API_V3_KEY", c.WeChatPay.APIv3Key,
		"WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", c.WeChatPay.PlatformPublicKeyFile, "WECHATPAY_PLATFORM_SERIAL", c.WeChatPay.PlatformSerial)
	if (c.MemberWebhook.URL == "") != (c.MemberWebhook.Secret == "") {
		errs = append(errs, &FieldError{Var: Prefix + "MEMBER_WEBHOOK_URL", Source: source(Prefix + "MEMBER_WEBHOOK_URL"), Reason: "and " + Prefix + "MEMBER_WEBHOOK_SECRET go together: set both or neither"})
	}
	if (c.RentalWebhook.URL == "") != (c.RentalWebhook.Secret == "") {
		errs = append(errs, &FieldError{Var: Prefix + "RENTAL_WEBHOOK_URL", Source: source(Prefix + "RENTAL_WEBHOOK_URL"), Reason: "and " + Prefix + "RENTAL_WEBHOOK_SECRET go together: set both or neither"})
	}
	if c.LLM.BaseURL != "" && c.LLM.Model == "" {
		errs = append(errs, &FieldError{Var: Prefix + "LLM_MODEL", Source: source(Prefix + "LLM_MODEL"), Reason: "is not set; it is required when " + Prefix + "LLM_BASE_URL is set"})
	}
	if c.LLM.BaseURL == "" && (c.LLM.Model != "" || c.LLM.VisionModel != "") {
		errs = append(errs, &FieldError{Var: Prefix + "LLM_BASE_URL", Source: source(Prefix + "LLM_BASE_URL"), Reason: "is not set; it is required when " + Prefix + "LLM_MODEL or " + Prefix + "LLM_VISION_MODEL is set"})
	}
	errs = append(errs, c.validateMedia(source)...)
	if c.WeChatPay.Enabled() && !c.WeChat.Enabled() {
		errs = append(errs, &FieldError{Var: Prefix + "WECHATPAY_MCH_ID", Source: source(Prefix + "WECHATPAY_MCH_ID"), Reason: "needs the mini-program (" + Prefix + "WECHAT_APP_ID): payments are made from it"})
	}
	return errs
}

// readFile reads a YAML file of `key: value` pairs whose keys are the
// variable names without the prefix, lower-cased (http_addr, wecom_corp_id…).
func readFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty configuration
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	byKey := map[string]string{}
	for _, s := range settings {
		byKey[s.key()] = s.env
	}
	out := map[string]string{}
	var errs []error
	for k, v := range raw {
		env, ok := byKey[strings.ToLower(k)]
		if !ok {
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q", path, k))
			continue
		}
		switch v := v.(type) {
		case nil:
		case map[string]any, []any:
			errs = append(errs, fmt.Errorf("config file %s: key %q must be a single value", path, k))
		default:
			out[env] = fmt.Sprint(v)
		}
	}
	return out, errors.Join(errs...)
}

// Redacted returns the effective configuration as variable=value lines in
// table order, with secrets replaced so that it can be printed or logged.
func (c Config) Redacted() []string {
	var lines []string
	for _, s := range settings {
		v := c.raw[s.env]
		if s.env == Prefix+"PUBLIC_URL" {
			v = c.PublicURL // derived from HTTP_ADDR when unset
		}
		if s.secret && v != "" {
			v = "<redacted>"
		}
		lines = append(lines, s.env+"="+v)
	}
	return lines
}

// Table renders the settings as a Markdown table (variable, default, meaning)
// for the README, so documentation and code cannot drift apart.
func Table() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, s := range settings {
		def := s.def
		if def != "" {
			def = "`" + def + "`"
		}
		help := s.help
		if s.secret {
			help += " (secret)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.env, def, help)
	}
	return b.String()
}
