package wechatpay

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
)

// FuzzParseNotification feeds arbitrary bodies and header values to
// ParseNotification, and — since random input almost never passes the
// signature — also to the decoding that follows verification, so both halves
// are explored. Neither may panic, and every error must carry one of the two
// sentinels the gateway maps to 401 and 400.
func FuzzParseNotification(f *testing.F) {
	c, platform, now := verifyFixture(f)
	ts := strconv.FormatInt(now.Unix(), 10)

	seal := func(plaintext, nonce, aad string) string {
		block, _ := aes.NewCipher(c.apiV3Key)
		gcm, _ := cipher.NewGCM(block)
		return base64.StdEncoding.EncodeToString(gcm.Seal(nil, []byte(nonce), []byte(plaintext), []byte(aad)))
	}
	envelope := func(event, originalType, plaintext string) string {
		b, _ := json.Marshal(map[string]any{
			"id": "EV-2018022511223320873", "create_time": "2015-05-20T13:29:35+08:00",
			"resource_type": "encrypt-resource", "event_type": event, "summary": "支付成功",
			"resource": map[string]string{
				"original_type": originalType, "algorithm": "AEAD_AES_256_GCM", "associated_data": originalType,
				"nonce": "fdasflkja484", "ciphertext": seal(plaintext, "fdasflkja484", originalType),
			},
		})
		return string(b)
	}
	seeds := []string{
		envelope(EventTransactionSuccess, "transaction", `{"appid":"wx","mchid":"1","out_trade_no":"T100001","trade_state":"SUCCESS","success_time":"2026-06-08T10:34:56+08:00","amount":{"total":100}}`),
		envelope(EventRefundSuccess, "refund", `{"mchid":"1","out_refund_no":"R1","refund_status":"SUCCESS","amount":{"total":100,"refund":50}}`),
		envelope(EventTransactionSuccess, "transaction", `{"success_time":"yesterday"}`),
		envelope(EventRefundAbnormal, "refund", `[]`),
		`{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"1","ciphertext":"AAAA"}}`,
		`{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":null}`,
		`null`, ``, `{`,
	}
	for _, body := range seeds {
		f.Add([]byte(body), ts, "nonce", platformSign(f, platform, ts, "nonce", body), testPlatformSerial)
	}
	f.Add([]byte("{}"), "99999999999999999999", "", "WECHATPAY/SIGNTEST/AAAA", "x")

	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, sig, serial string) {
		h := http.Header{}
		h.Set("Wechatpay-Timestamp", ts)
		h.Set("Wechatpay-Nonce", nonce)
		h.Set("Wechatpay-Signature", sig)
		h.Set("Wechatpay-Serial", serial)
		if n, err := c.ParseNotification(h, body); err != nil {
			if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("error without a sentinel: %v", err)
			}
		} else if n == nil {
			t.Fatal("nil notification without error")
		}
		if n, err := c.decodeNotification(body); err != nil {
			if !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("decode error without ErrUndecryptable: %v", err)
			}
		} else if n.ID == "" || n.EventType == "" {
			t.Fatalf("accepted a notification without id or event type: %+v", n)
		}
	})
}
