package wechatpay

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testPlatformSerial = "PUB_KEY_ID_0000000000000024101100397200000006"

// platformSign signs like WeChat Pay, written out here rather than calling
// the package's own helpers.
func platformSign(t testing.TB, key *rsa.PrivateKey, ts, nonce, body string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(ts + "\n" + nonce + "\n" + body + "\n"))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// verifyFixture is a client whose platform key is the wechatpay-go test key
// and whose clock stands still.
func verifyFixture(t testing.TB) (*Client, *rsa.PrivateKey, time.Time) {
	t.Helper()
	platform := mustPrivateKey(t, wxgoTestKeyPEM)
	now := time.Date(2026, 6, 8, 10, 34, 56, 0, time.UTC)
	c := &Client{
		platformKey:    &platform.PublicKey,
		platformSerial: testPlatformSerial,
		apiV3Key:       []byte("0123456789abcdef0123456789abcdef"),
		now:            func() time.Time { return now },
		maxSkew:        DefaultMaxSkew,
	}
	return c, platform, now
}

func TestVerifyHeaders(t *testing.T) {
	c, platform, now := verifyFixture(t)
	const body = `{"prepay_id":"wx201410272009395522657a690389285100"}`
	const nonce = "d824f2e086d3c1df967785d13fcd22ef"
	ts := strconv.FormatInt(now.Unix(), 10)
	signed := func(ts, nonce, body string) http.Header {
		h := http.Header{}
		h.Set("Wechatpay-Timestamp", ts)
		h.Set("Wechatpay-Nonce", nonce)
		h.Set("Wechatpay-Signature", platformSign(t, platform, ts, nonce, body))
		h.Set("Wechatpay-Serial", testPlatformSerial)
		h.Set("Wechatpay-Signature-Type", Scheme)
		h.Set("Request-ID", "08F78BB5AF0610D302A2D1C2D4CAA3F2")
		return h
	}
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		name    string
		header  func() http.Header
		body    string
		wantErr string // substring; "" means valid
	}{
		{"valid", func() http.Header { return signed(ts, nonce, body) }, body, ""},
		{"valid without Signature-Type or Request-ID", func() http.Header {
			h := signed(ts, nonce, body)
			h.Del("Wechatpay-Signature-Type")
			h.Del("Request-ID")
			return h
		}, body, ""},
		{"204 empty body is signed as \"\"", func() http.Header { return signed(ts, nonce, "") }, "", ""},
		{"keys not canonicalized (filled by hand)", func() http.Header {
			h := signed(ts, nonce, body)
			raw := http.Header{}
			for k, v := range h {
				raw[strings.ToLower(k)] = v
			}
			return raw
		}, body, ""},
		{"4m59s old", func() http.Header { return signed(at(-4*time.Minute-59*time.Second), nonce, body) }, body, ""},
		{"4m59s ahead", func() http.Header { return signed(at(4*time.Minute+59*time.Second), nonce, body) }, body, ""},
		{"exactly 5m old", func() http.Header { return signed(at(-5*time.Minute), nonce, body) }, body, "away from now"},
		{"an hour ahead", func() http.Header { return signed(at(time.Hour), nonce, body) }, body, "away from now"},
		{"missing timestamp", func() http.Header { h := signed(ts, nonce, body); h.Del("Wechatpay-Timestamp"); return h }, body, "missing Wechatpay-Timestamp"},
		{"missing nonce", func() http.Header { h := signed(ts, nonce, body); h.Del("Wechatpay-Nonce"); return h }, body, "missing Wechatpay-Nonce"},
		{"missing signature", func() http.Header { h := signed(ts, nonce, body); h.Del("Wechatpay-Signature"); return h }, body, "missing Wechatpay-Signature"},
		{"missing serial", func() http.Header { h := signed(ts, nonce, body); h.Del("Wechatpay-Serial"); return h }, body, "missing Wechatpay-Serial"},
		{"unknown serial", func() http.Header {
			h := signed(ts, nonce, body)
			h.Set("Wechatpay-Serial", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
			return h
		}, body, "unknown Wechatpay-Serial"},
		{"other signature type", func() http.Header {
			h := signed(ts, nonce, body)
			h.Set("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3")
			return h
		}, body, "unsupported"},
		{"signature probe", func() http.Header {
			h := signed(ts, nonce, body)
			h.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+base64.StdEncoding.EncodeToString([]byte("probe")))
			return h
		}, body, "probe"},
		{"timestamp with sign", func() http.Header { return signed("+"+ts, nonce, body) }, body, "bad Wechatpay-Timestamp"},
		{"timestamp in milliseconds", func() http.Header { return signed(ts+"000", nonce, body) }, body, "bad Wechatpay-Timestamp"},
		{"signature not base64", func() http.Header { h := signed(ts, nonce, body); h.Set("Wechatpay-Signature", "%%%"); return h }, body, "not base64"},
		{"tampered body", func() http.Header { return signed(ts, nonce, body) }, strings.Replace(body, "wx2014", "wx2015", 1), "does not match"},
		{"body with trailing space", func() http.Header { return signed(ts, nonce, body) }, body + " ", "does not match"},
		{"tampered nonce", func() http.Header {
			h := signed(ts, nonce, body)
			h.Set("Wechatpay-Nonce", "e824f2e086d3c1df967785d13fcd22ef")
			return h
		}, body, "does not match"},
		{"signed by another key", func() http.Header {
			other := mustPrivateKey(t, officialTestKeyPEM)
			h := signed(ts, nonce, body)
			h.Set("Wechatpay-Signature", platformSign(t, other, ts, nonce, body))
			return h
		}, body, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.verify(tt.header(), []byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("err = %v, want ErrSignature", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifySkewCheckCanBeTurnedOff(t *testing.T) {
	c, platform, now := verifyFixture(t)
	c.maxSkew = -1
	ts := strconv.FormatInt(now.Add(-48*time.Hour).Unix(), 10)
	h := http.Header{}
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", "n")
	h.Set("Wechatpay-Signature", platformSign(t, platform, ts, "n", "{}"))
	h.Set("Wechatpay-Serial", testPlatformSerial)
	if err := c.verify(h, []byte("{}")); err != nil {
		t.Fatalf("skew check off, verify: %v", err)
	}
}

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      APIError
		retryable bool
	}{
		{"param error with detail", 400, `{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"/amount/total","value":0,"issue":"必须大于0","location":"body"}}`,
			APIError{Status: 400, Code: "PARAM_ERROR", Message: "参数错误", Detail: &ErrorDetail{Field: "/amount/total", Value: []byte("0"), Issue: "必须大于0", Location: "body"}}, false},
		{"detail of another shape is dropped", 400, `{"code":"INVALID_REQUEST","message":"m","detail":[1,2]}`,
			APIError{Status: 400, Code: "INVALID_REQUEST", Message: "m"}, false},
		{"rate limited", 429, `{"code":"FREQUENCY_LIMITED","message":"频率超限"}`, APIError{Status: 429, Code: "FREQUENCY_LIMITED", Message: "频率超限"}, true},
		{"system error", 500, `{"code":"SYSTEM_ERROR","message":"系统错误"}`, APIError{Status: 500, Code: "SYSTEM_ERROR", Message: "系统错误"}, true},
		{"not json", 502, `<html>bad gateway</html>`, APIError{Status: 502, Code: "UNPARSEABLE", Message: "error body is not JSON (24 bytes)"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAPIError(tt.status, "", []byte(tt.body))
			if got.Status != tt.want.Status || got.Code != tt.want.Code || got.Message != tt.want.Message {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if (got.Detail == nil) != (tt.want.Detail == nil) ||
				got.Detail != nil && (got.Detail.Field != tt.want.Detail.Field || string(got.Detail.Value) != string(tt.want.Detail.Value) || got.Detail.Issue != tt.want.Detail.Issue) {
				t.Fatalf("detail = %+v, want %+v", got.Detail, tt.want.Detail)
			}
			if got.Retryable() != tt.retryable {
				t.Fatalf("Retryable() = %v", got.Retryable())
			}
			if !strings.Contains(got.Error(), tt.want.Code) {
				t.Fatalf("Error() = %q", got.Error())
			}
		})
	}
}
