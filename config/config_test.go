package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const validAES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" // 43 base64 characters → 32 bytes

func TestDefaults(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatalf("Load with nothing set: %v", err)
	}
	if c.HTTPAddr != ":8080" || c.DatabaseURL != "sqlite:///./data/tacklegate.db" || c.CallbackMaxSkew != 5*time.Minute {
		t.Errorf("defaults: addr=%q db=%q skew=%v", c.HTTPAddr, c.DatabaseURL, c.CallbackMaxSkew)
	}
	if c.PublicURL != "http://localhost:8080" {
		t.Errorf("derived public URL = %q", c.PublicURL)
	}
	if !c.AutoMigrate || c.BodyLimit != 16<<20 || c.LogFormat != "text" {
		t.Errorf("defaults: automigrate=%v bodylimit=%d format=%q", c.AutoMigrate, c.BodyLimit, c.LogFormat)
	}
	if got := c.DisabledChannels(); strings.Join(got, ",") != "wechat,wechatpay,wecom" {
		t.Errorf("DisabledChannels = %v", got)
	}
}

func TestValues(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name    string
		vars    map[string]string
		wantVar string // "" = valid
		check   func(t *testing.T, c Config)
	}{
		{"addr with host", map[string]string{"TACKLEGATE_HTTP_ADDR": "127.0.0.1:9000"}, "", func(t *testing.T, c Config) {
			if c.HTTPAddr != "127.0.0.1:9000" || c.PublicURL != "http://127.0.0.1:9000" {
				t.Errorf("addr=%q public=%q", c.HTTPAddr, c.PublicURL)
			}
		}},
		{"addr nonsense", map[string]string{"TACKLEGATE_HTTP_ADDR": "nonsense"}, "TACKLEGATE_HTTP_ADDR", nil},
		{"addr bad port", map[string]string{"TACKLEGATE_HTTP_ADDR": ":99999"}, "TACKLEGATE_HTTP_ADDR", nil},
		{"addr bad host", map[string]string{"TACKLEGATE_HTTP_ADDR": "bad_host!:80"}, "TACKLEGATE_HTTP_ADDR", nil},
		{"public url", map[string]string{"TACKLEGATE_PUBLIC_URL": "https://shop.example.com/"}, "", func(t *testing.T, c Config) {
			if c.PublicURL != "https://shop.example.com" {
				t.Errorf("public=%q (trailing slash kept?)", c.PublicURL)
			}
		}},
		{"public url relative", map[string]string{"TACKLEGATE_PUBLIC_URL": "/shop"}, "TACKLEGATE_PUBLIC_URL", nil},
		{"postgres url", map[string]string{"TACKLEGATE_DATABASE_URL": "postgres://u@127.0.0.1:5432/db?sslmode=disable"}, "", nil},
		{"mysql url refused", map[string]string{"TACKLEGATE_DATABASE_URL": "mysql://root@localhost/x"}, "TACKLEGATE_DATABASE_URL", nil},
		{"redis url", map[string]string{"TACKLEGATE_REDIS_URL": "redis://127.0.0.1:6379/0"}, "", nil},
		{"redis url bad", map[string]string{"TACKLEGATE_REDIS_URL": "127.0.0.1:6379"}, "TACKLEGATE_REDIS_URL", nil},
		{"data key", map[string]string{"TACKLEGATE_DATA_KEY": key}, "", func(t *testing.T, c Config) {
			if len(c.DataKey) != 32 {
				t.Errorf("data key length %d", len(c.DataKey))
			}
		}},
		{"data key short", map[string]string{"TACKLEGATE_DATA_KEY": base64.StdEncoding.EncodeToString(make([]byte, 16))}, "TACKLEGATE_DATA_KEY", nil},
		{"data key not base64", map[string]string{"TACKLEGATE_DATA_KEY": "!!!"}, "TACKLEGATE_DATA_KEY", nil},
		{"skew 0 disables", map[string]string{"TACKLEGATE_CALLBACK_MAX_SKEW": "0"}, "", func(t *testing.T, c Config) {
			if c.CallbackMaxSkew != 0 {
				t.Errorf("skew=%v", c.CallbackMaxSkew)
			}
		}},
		{"skew negative", map[string]string{"TACKLEGATE_CALLBACK_MAX_SKEW": "-1m"}, "TACKLEGATE_CALLBACK_MAX_SKEW", nil},
		{"skew words", map[string]string{"TACKLEGATE_CALLBACK_MAX_SKEW": "five minutes"}, "TACKLEGATE_CALLBACK_MAX_SKEW", nil},
		{"body limit", map[string]string{"TACKLEGATE_HTTP_BODY_LIMIT": "512KiB"}, "", func(t *testing.T, c Config) {
			if c.BodyLimit != 512<<10 {
				t.Errorf("body limit %d", c.BodyLimit)
			}
		}},
		{"body limit junk", map[string]string{"TACKLEGATE_HTTP_BODY_LIMIT": "lots"}, "TACKLEGATE_HTTP_BODY_LIMIT", nil},
		{"log format", map[string]string{"TACKLEGATE_LOG_FORMAT": "xml"}, "TACKLEGATE_LOG_FORMAT", nil},
		{"auto migrate off", map[string]string{"TACKLEGATE_AUTO_MIGRATE": "false"}, "", func(t *testing.T, c Config) {
			if c.AutoMigrate {
				t.Error("auto migrate still on")
			}
		}},
		{"wechat complete", map[string]string{"TACKLEGATE_WECHAT_APP_ID": "wx1234567890abcdef", "TACKLEGATE_WECHAT_APP_SECRET": "s", "TACKLEGATE_WECHAT_TOKEN": "tok123", "TACKLEGATE_WECHAT_AES_KEY": validAES}, "", func(t *testing.T, c Config) {
			if !c.WeChat.Enabled() || c.WeChat.APIBase != "https://api.weixin.qq.com" {
				t.Errorf("wechat %+v", c.WeChat)
			}
		}},
		{"wechat without secret", map[string]string{"TACKLEGATE_WECHAT_APP_ID": "wx1234567890abcdef"}, "TACKLEGATE_WECHAT_APP_SECRET", nil},
		{"wechat token without aes key", map[string]string{"TACKLEGATE_WECHAT_APP_ID": "wx1234567890abcdef", "TACKLEGATE_WECHAT_APP_SECRET": "s", "TACKLEGATE_WECHAT_TOKEN": "tok123"}, "TACKLEGATE_WECHAT_TOKEN", nil},
		{"wechat bad app id", map[string]string{"TACKLEGATE_WECHAT_APP_ID": "12345", "TACKLEGATE_WECHAT_APP_SECRET": "s"}, "TACKLEGATE_WECHAT_APP_ID", nil},
		{"wechat short aes key", map[string]string{"TACKLEGATE_WECHAT_AES_KEY": "short"}, "TACKLEGATE_WECHAT_AES_KEY", nil},
		{"wecom agent id not a number", map[string]string{"TACKLEGATE_WECOM_AGENT_ID": "abc"}, "TACKLEGATE_WECOM_AGENT_ID", nil},
		{"wecom incomplete", map[string]string{"TACKLEGATE_WECOM_CORP_ID": "ww1"}, "TACKLEGATE_WECOM_SECRET", nil},
		{"wecom token bad chars", map[string]string{"TACKLEGATE_WECOM_TOKEN": "has space"}, "TACKLEGATE_WECOM_TOKEN", nil},
		{"pay v3 key length", map[string]string{"TACKLEGATE_WECHATPAY_API_V3_KEY": "short"}, "TACKLEGATE_WECHATPAY_API_V3_KEY", nil},
		{"pay key file missing", map[string]string{"TACKLEGATE_WECHATPAY_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "TACKLEGATE_WECHATPAY_PRIVATE_KEY_FILE", nil},
		{"pay needs mini-program", map[string]string{"TACKLEGATE_WECHATPAY_MCH_ID": "1900000001"}, "TACKLEGATE_WECHATPAY_MCH_ID", nil},
		{"api base with query", map[string]string{"TACKLEGATE_WECOM_API_BASE": "http://127.0.0.1:1/x?y=1"}, "TACKLEGATE_WECOM_API_BASE", nil},
		{"owner password short", map[string]string{"TACKLEGATE_OWNER_PASSWORD": "short"}, "TACKLEGATE_OWNER_PASSWORD", nil},
		{"owner name odd", map[string]string{"TACKLEGATE_OWNER_USERNAME": "boss man"}, "TACKLEGATE_OWNER_USERNAME", nil},
		{"webhook without secret", map[string]string{"TACKLEGATE_MEMBER_WEBHOOK_URL": "https://crm.example.com/hook"}, "TACKLEGATE_MEMBER_WEBHOOK_URL", nil},
		{"webhook complete", map[string]string{"TACKLEGATE_MEMBER_WEBHOOK_URL": "https://crm.example.com/hook", "TACKLEGATE_MEMBER_WEBHOOK_SECRET": "0123456789abcdef"}, "", func(t *testing.T, c Config) {
			if c.MemberWebhook.URL == "" || c.OwnerUsername != "owner" {
				t.Errorf("%+v %q", c.MemberWebhook, c.OwnerUsername)
			}
		}},
		{"rental webhook without secret", map[string]string{"TACKLEGATE_RENTAL_WEBHOOK_URL": "https://erp.example.com/orders"}, "TACKLEGATE_RENTAL_WEBHOOK_URL", nil},
		{"rental webhook secret alone", map[string]string{"TACKLEGATE_RENTAL_WEBHOOK_SECRET": "0123456789abcdef"}, "TACKLEGATE_RENTAL_WEBHOOK_URL", nil},
		{"rental webhook short secret", map[string]string{"TACKLEGATE_RENTAL_WEBHOOK_URL": "https://erp.example.com/orders", "TACKLEGATE_RENTAL_WEBHOOK_SECRET": "short"}, "TACKLEGATE_RENTAL_WEBHOOK_SECRET", nil},
		{"rental webhook not a URL", map[string]string{"TACKLEGATE_RENTAL_WEBHOOK_URL": "erp.example.com", "TACKLEGATE_RENTAL_WEBHOOK_SECRET": "0123456789abcdef"}, "TACKLEGATE_RENTAL_WEBHOOK_URL", nil},
		{"rental webhook complete", map[string]string{"TACKLEGATE_RENTAL_WEBHOOK_URL": "https://erp.example.com/orders", "TACKLEGATE_RENTAL_WEBHOOK_SECRET": "0123456789abcdef"}, "", func(t *testing.T, c Config) {
			if c.RentalWebhook.URL != "https://erp.example.com/orders" || c.RentalWebhook.Secret != "0123456789abcdef" {
				t.Errorf("%+v", c.RentalWebhook)
			}
		}},
		{"assistant mode default", nil, "", func(t *testing.T, c Config) {
			if c.AssistantMode != "unattended" || c.LLM.Enabled() || c.LLM.Timeout != 15*time.Second {
				t.Errorf("mode=%q llm=%+v", c.AssistantMode, c.LLM)
			}
		}},
		{"assistant mode first", map[string]string{"TACKLEGATE_ASSISTANT_MODE": "First"}, "", func(t *testing.T, c Config) {
			if c.AssistantMode != "first" {
				t.Errorf("mode=%q", c.AssistantMode)
			}
		}},
		{"assistant mode off", map[string]string{"TACKLEGATE_ASSISTANT_MODE": "off"}, "", func(t *testing.T, c Config) {
			if c.AssistantMode != "off" {
				t.Errorf("mode=%q", c.AssistantMode)
			}
		}},
		{"assistant mode bad", map[string]string{"TACKLEGATE_ASSISTANT_MODE": "always"}, "TACKLEGATE_ASSISTANT_MODE", nil},
		{"llm on", map[string]string{"TACKLEGATE_LLM_BASE_URL": "https://api.example.com/v1/", "TACKLEGATE_LLM_MODEL": "m1", "TACKLEGATE_LLM_API_KEY": "sk-x", "TACKLEGATE_LLM_VISION_MODEL": "v1", "TACKLEGATE_LLM_TIMEOUT": "30s"}, "", func(t *testing.T, c Config) {
			want := LLM{BaseURL: "https://api.example.com/v1", APIKey: "sk-x", Model: "m1", VisionModel: "v1", Timeout: 30 * time.Second}
			if c.LLM != want || !c.LLM.Enabled() {
				t.Errorf("llm=%+v", c.LLM)
			}
		}},
		{"llm base without model", map[string]string{"TACKLEGATE_LLM_BASE_URL": "https://api.example.com/v1"}, "TACKLEGATE_LLM_MODEL", nil},
		{"llm model without base", map[string]string{"TACKLEGATE_LLM_MODEL": "m1"}, "TACKLEGATE_LLM_BASE_URL", nil},
		{"llm base not a url", map[string]string{"TACKLEGATE_LLM_BASE_URL": "api.example.com", "TACKLEGATE_LLM_MODEL": "m1"}, "TACKLEGATE_LLM_BASE_URL", nil},
		{"llm timeout too short", map[string]string{"TACKLEGATE_LLM_TIMEOUT": "10ms"}, "TACKLEGATE_LLM_TIMEOUT", nil},
		{"empty value means default", map[string]string{"TACKLEGATE_HTTP_ADDR": "  "}, "", func(t *testing.T, c Config) {
			if c.HTTPAddr != ":8080" {
				t.Errorf("addr=%q", c.HTTPAddr)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", env(tt.vars))
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %s, got none", tt.wantVar)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FieldError: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	_, err := Load("", env(map[string]string{"TACKLEGATE_HTTP_ADDR": "x", "TACKLEGATE_LOG_LEVEL": "loud"}))
	if err == nil || !strings.Contains(err.Error(), "TACKLEGATE_HTTP_ADDR") || !strings.Contains(err.Error(), "TACKLEGATE_LOG_LEVEL") {
		t.Fatalf("want both variables named, got %v", err)
	}
}

func TestFileThenEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tacklegate.yaml")
	body := "http_addr: 127.0.0.1:7000\nlog_level: debug\ncallback_max_skew: 2m\nwecom_agent_id: 1000002\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{"TACKLEGATE_LOG_LEVEL": "warn"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:7000" || c.CallbackMaxSkew != 2*time.Minute || c.WeCom.AgentID != 1000002 {
		t.Errorf("file values not applied: %+v", c)
	}
	if c.LogLevel != "warn" {
		t.Errorf("environment did not override the file: level=%q", c.LogLevel)
	}

	if err := os.WriteFile(path, []byte("http_adr: :80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env(nil)); err == nil || !strings.Contains(err.Error(), `unknown key "http_adr"`) {
		t.Errorf("misspelt key: got %v", err)
	}

	if err := os.WriteFile(path, []byte("http_addr: nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, env(nil))
	if err == nil || !strings.Contains(err.Error(), "TACKLEGATE_HTTP_ADDR (from "+path+")") {
		t.Errorf("file error should name the variable and the file: %v", err)
	}

	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env(nil)); err != nil {
		t.Errorf("empty file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), env(nil)); err == nil {
		t.Error("missing file accepted")
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	secret := "very-secret-value-123"
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	c, err := Load("", env(map[string]string{
		"TACKLEGATE_WECHAT_APP_ID": "wx1234567890abcdef", "TACKLEGATE_WECHAT_APP_SECRET": secret,
		"TACKLEGATE_DATA_KEY": key, "TACKLEGATE_REDIS_URL": "redis://:" + secret + "@127.0.0.1:6379/0",
		"TACKLEGATE_RENTAL_WEBHOOK_URL": "https://erp.example.com/orders", "TACKLEGATE_RENTAL_WEBHOOK_SECRET": secret,
		"TACKLEGATE_LLM_BASE_URL": "https://api.example.com/v1", "TACKLEGATE_LLM_MODEL": "m1", "TACKLEGATE_LLM_API_KEY": secret,
	}))
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Join(c.Redacted(), "\n")
	for _, s := range []string{secret, key} {
		if strings.Contains(out, s) {
			t.Errorf("Redacted output leaks %q:\n%s", s, out)
		}
	}
	for _, want := range []string{"TACKLEGATE_WECHAT_APP_ID=wx1234567890abcdef", "TACKLEGATE_WECHAT_APP_SECRET=<redacted>", "TACKLEGATE_RENTAL_WEBHOOK_SECRET=<redacted>", "TACKLEGATE_LLM_API_KEY=<redacted>", "TACKLEGATE_LLM_MODEL=m1", "TACKLEGATE_HTTP_ADDR=:8080", "TACKLEGATE_PUBLIC_URL=http://localhost:8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted output lacks %q:\n%s", want, out)
		}
	}
}

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct{ in, driver, dsn string }{
		{"sqlite:///./data/tacklegate.db", "sqlite", "./data/tacklegate.db"},
		{"sqlite:///var/lib/tg.db", "sqlite", "/var/lib/tg.db"},
		{"sqlite://:memory:", "sqlite", ":memory:"},
		{"sqlite:////tmp/x/tg.db", "sqlite", "/tmp/x/tg.db"},
		{"sqlite://data/tg.db", "sqlite", "data/tg.db"},
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		{"sqlite://", "", ""},
		{"file.db", "", ""},
	}
	for _, tt := range tests {
		d, dsn, err := ParseDatabaseURL(tt.in)
		if tt.driver == "" {
			if err == nil {
				t.Errorf("%q: want error", tt.in)
			}
			continue
		}
		if err != nil || d != tt.driver || dsn != tt.dsn {
			t.Errorf("%q: got (%q, %q, %v), want (%q, %q)", tt.in, d, dsn, err, tt.driver, tt.dsn)
		}
	}
}

func TestTableListsEverySetting(t *testing.T) {
	table := Table()
	for _, s := range settings {
		if !strings.Contains(table, "`"+s.env+"`") {
			t.Errorf("Table() lacks %s", s.env)
		}
	}
}
