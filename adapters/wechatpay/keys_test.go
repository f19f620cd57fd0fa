package wechatpay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestLoadPrivateKey(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"PKCS#1 (official test key)", testingKey(officialTestKeyPEM), ""},
		{"PKCS#8 (wechatpay-go test key)", testingKey(wxgoTestKeyPEM), ""},
		{"text before the block", "Bag Attributes\n    localKeyID: 01\n" + testingKey(wxgoTestKeyPEM), ""},
		{"certificate before the key", wxgoTestCertPEM + "\n" + testingKey(wxgoTestKeyPEM), ""},
		{"empty", "", "empty input"},
		{"not PEM", "hello", "no PEM block"},
		{"a public key", officialTestPublicKeyPEM, `want a PEM block of type`},
		{"EC key", pemOf("PRIVATE KEY", ecDER), "want RSA"},
		{"RSA 1024", pemOf("PRIVATE KEY", smallDER), "RSA 1024"},
		{"encrypted PKCS#8", pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "password-encrypted"},
		{"corrupt PKCS#8", pemOf("PRIVATE KEY", []byte{1, 2, 3}), "PKCS#8"},
		{"corrupt PKCS#1", pemOf("RSA PRIVATE KEY", []byte{1, 2, 3}), "PKCS#1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadPrivateKey([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("LoadPrivateKey: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadPublicKey(t *testing.T) {
	priv := mustPrivateKey(t, officialTestKeyPEM)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)}))
	tests := []struct {
		name    string
		in      string
		want    *rsa.PublicKey
		wantErr string
	}{
		{"PKIX public key (public-key mode)", officialTestPublicKeyPEM, &priv.PublicKey, ""},
		{"PKCS#1 public key", pkcs1, &priv.PublicKey, ""},
		{"platform certificate", wxgoTestCertPEM, &mustPrivateKey(t, wxgoTestKeyPEM).PublicKey, ""},
		{"a private key", testingKey(wxgoTestKeyPEM), nil, "want a PEM block of type"},
		{"garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", nil, "PUBLIC KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadPublicKey([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadPublicKey: %v", err)
				}
				if !k.Equal(tt.want) {
					t.Fatal("loaded a different key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	key := mustPrivateKey(t, officialTestKeyPEM)
	valid := func() Config {
		return Config{
			MchID: "1900007291", SerialNo: "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB", PrivateKey: key,
			APIv3Key: "0123456789abcdef0123456789abcdef", PlatformPublicKey: &key.PublicKey, PlatformSerial: testPlatformSerial,
		}
	}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr []string
	}{
		{"valid", func(*Config) {}, nil},
		{"valid with a prefixed base URL", func(c *Config) { c.BaseURL = "http://127.0.0.1:1234/pay/" }, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{"MchID", "SerialNo", "PrivateKey", "APIv3Key", "PlatformPublicKey", "PlatformSerial"}},
		{"APIv3 key of 31 bytes", func(c *Config) { c.APIv3Key = c.APIv3Key[:31] }, []string{"APIv3Key must be exactly 32 bytes, got 31"}},
		{"APIv3 key base64 of 32 bytes", func(c *Config) { c.APIv3Key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }, []string{"got 44"}},
		{"base URL without scheme", func(c *Config) { c.BaseURL = "api.mch.weixin.qq.com" }, []string{"BaseURL"}},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://api.mch.weixin.qq.com?x=1" }, []string{"BaseURL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.edit(&cfg)
			c, err := New(cfg)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.baseURL != strings.TrimRight(cfg.BaseURL, "/") && cfg.BaseURL != "" {
					t.Fatalf("baseURL = %q", c.baseURL)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to mention %q", err, w)
				}
			}
		})
	}
	c, err := New(valid())
	if err != nil {
		t.Fatal(err)
	}
	if c.baseURL != DefaultBaseURL || c.maxSkew != DefaultMaxSkew || c.hc == nil || c.now == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
}
