package wechatpay

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Published vectors. Where each comes from is written next to it; every
// expected signature was also reproduced with the OpenSSL command line
// (`openssl dgst -sha256 -sign key.pem | openssl base64 -A`), an independent
// implementation.

func mustPrivateKey(t testing.TB, pemText string) *rsa.PrivateKey {
	t.Helper()
	k, err := LoadPrivateKey([]byte(testingKey(pemText)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPublicKey(t testing.TB, pemText string) *rsa.PublicKey {
	t.Helper()
	k, err := LoadPublicKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRequestSignatureVectors checks request signing against the official
// examples: the message layout, the trailing "\n" of an empty GET body and
// the signature bytes.
func TestRequestSignatureVectors(t *testing.T) {
	key := mustPrivateKey(t, officialTestKeyPEM)
	tests := []struct {
		name, source      string
		method, url, body string
		timestamp, nonce  string
		wantMessage, want string
	}{
		{
			// pay.weixin.qq.com/doc/v3/merchant/4012365334 (路径参数 example),
			// whose full Authorization example carries this signature.
			name:        "official GET with path parameter, empty body",
			method:      "GET",
			url:         "/v3/refund/domestic/refunds/123123123123",
			timestamp:   "1554208460",
			nonce:       "593BEC0C930BF1AFEB40B4A08C8FB242",
			wantMessage: "GET\n/v3/refund/domestic/refunds/123123123123\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n",
			want:        "Lc9VXxmeonkdV8Xk9tmigQFLhl0vRWTerdmoRu01aAnYwIrD/5nsSwE1WlmZGLRlAFTNQ3QsMa0+VRDlJp1Wp5p0nO8EK68b5sJBbjouxaFciIfq1zfDWWz+jqhcMoKXI1A6dPm1AW7D4d30WsMTNzp6g23OXakIsh9LO3lUmwvTuE0BY8ncf6tNGk4wKmvXwERd/ZpoQY3MAVKz+Nakwc+2XBmzT66KcUehU5kr4IvGa/lEU5RZb/q00zP9VLdBhC/jQSX3X1UcJLCtEc4gTmib4tnmAT+bHF/e17ZAuxDNcx6rqT8gNEXqaJGG+1OflMSTU2tpyG65G4dMKdFcoA==",
		},
		{
			// The official JSAPI body example (请求报文主体 example, mchid
			// 1230000109) as reproduced with its expected signature in
			// public code ("微信示例"); reproduced with OpenSSL.
			name:      "official POST jsapi with JSON body",
			method:    "POST",
			url:       "/v3/pay/transactions/jsapi",
			timestamp: "1554208460",
			nonce:     "593BEC0C930BF1AFEB40B4A08C8FB242",
			body:      `{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}`,
			want:      "gEuexJ547PHFV77TQ6eiE4tphVYfWfUe1Wc2dBmVnoMYU2rl/M4zhw+b3vBhuMw6AC7pteNkryLA7UWU2h+umo0OdSuuLm1++O3NckQPCSfm6dypsjn4GYm84KMqXWFrhFmyxEwIdEJDr3w1UYfxOcu55OQupfLkrt/ZzuOspnliJFrPzGQFUk7lGqMMtpz3EfbDUNxnVsHblORg3hVmuYNmbGWnS2ovU30Y2Q+iKFDxzkaXBk8LTy6HzvxizRo6Q+J4SVM7O0hKXfgo1QdI68kpzNULb3EVBXlhTyPUzhkHzzLxECL1qHl3HH2hEv8++C+4wBlsagF3j/O6PABojA==",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := requestMessage(tt.method, tt.url, tt.timestamp, tt.nonce, []byte(tt.body))
			if tt.wantMessage != "" && string(msg) != tt.wantMessage {
				t.Fatalf("message = %q, want %q", msg, tt.wantMessage)
			}
			got, err := signSHA256WithRSA(key, msg)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("signature = %s\nwant        %s", got, tt.want)
			}
		})
	}
}

// TestAuthorizationHeaderMatchesOfficialExample rebuilds the official
// Authorization example (same doc page as the GET vector) from its parts.
func TestAuthorizationHeaderMatchesOfficialExample(t *testing.T) {
	const sig = "Lc9VXxmeonkdV8Xk9tmigQFLhl0vRWTerdmoRu01aAnYwIrD/5nsSwE1WlmZGLRlAFTNQ3QsMa0+VRDlJp1Wp5p0nO8EK68b5sJBbjouxaFciIfq1zfDWWz+jqhcMoKXI1A6dPm1AW7D4d30WsMTNzp6g23OXakIsh9LO3lUmwvTuE0BY8ncf6tNGk4wKmvXwERd/ZpoQY3MAVKz+Nakwc+2XBmzT66KcUehU5kr4IvGa/lEU5RZb/q00zP9VLdBhC/jQSX3X1UcJLCtEc4gTmib4tnmAT+bHF/e17ZAuxDNcx6rqT8gNEXqaJGG+1OflMSTU2tpyG65G4dMKdFcoA=="
	got := authorization("1900007291", "593BEC0C930BF1AFEB40B4A08C8FB242", "1554208460", "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB", sig)
	// The official example orders the pairs mchid, nonce_str, signature,
	// timestamp, serial_no; order is free, so compare the pairs.
	official := `WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="` + sig + `",timestamp="1554208460",serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"`
	if pairs(t, got) != pairs(t, official) {
		t.Fatalf("Authorization\n got %s\nwant %s", got, official)
	}
}

// pairs returns the scheme and the sorted key="value" pairs of an
// Authorization value.
func pairs(t *testing.T, h string) string {
	t.Helper()
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		t.Fatalf("no scheme in %q", h)
	}
	ps := strings.Split(rest, ",")
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j] < ps[j-1]; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return scheme + " " + strings.Join(ps, ",")
}

// TestWechatpayGoSignerVector is the SHA256withRSA vector of wechatpay-go
// (utils/sign_test.go): PKCS#8 key, message "source".
func TestWechatpayGoSignerVector(t *testing.T) {
	key := mustPrivateKey(t, wxgoTestKeyPEM)
	const want = "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6" +
		"pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOh" +
		"uH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwf" +
		"LpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
	got, err := signSHA256WithRSA(key, []byte("source"))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

// TestPaySignVector signs the mini-program payment example of the official
// "小程序调起支付签名" guide (appId wx2421b1c4370ec43b, timeStamp
// 1554208460, nonceStr 593BEC0C930BF1AFEB40B4A08C8FB242, prepay_id
// wx201410272009395522657a690389285100) with its test key. The page's own
// expected value could not be retrieved here; the expected value below is the
// OpenSSL command line's over the same four lines.
func TestPaySignVector(t *testing.T) {
	c := &Client{key: mustPrivateKey(t, officialTestKeyPEM)}
	p, err := c.paymentParams("wx2421b1c4370ec43b", "wx201410272009395522657a690389285100", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242")
	if err != nil {
		t.Fatal(err)
	}
	want := PaymentParams{
		TimeStamp: "1554208460",
		NonceStr:  "593BEC0C930BF1AFEB40B4A08C8FB242",
		Package:   "prepay_id=wx201410272009395522657a690389285100",
		SignType:  "RSA",
		PaySign:   "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw==",
	}
	if p != want {
		t.Fatalf("params = %+v\nwant %+v", p, want)
	}
}

// TestWechatpayGoNotificationVector is the complete notification of
// wechatpay-go core/notify/notify_test.go: headers signed by the key of
// wxgoTestCertPEM, an AEAD resource, APIv3 key "testMchAPIv3Key0". That key
// is 16 bytes, so the resource is really AES-128-GCM; the client is built by
// hand here because New (rightly) insists on 32 bytes.
func TestWechatpayGoNotificationVector(t *testing.T) {
	const body = `{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00",` +
		`"resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功",` +
		`"resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZt` +
		`tevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR` +
		`7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}`
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Wechatpay-Nonce", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz")
	h.Set("Wechatpay-Timestamp", "1624523846")
	h.Set("Wechatpay-Serial", "D7CE59D1F522D701")
	h.Set("Wechatpay-Signature", "tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXF"+
		"lbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1I"+
		"BLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY4"+
		"06ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==")
	c := &Client{
		platformKey:    mustPublicKey(t, wxgoTestCertPEM),
		platformSerial: "D7CE59D1F522D701",
		apiV3Key:       []byte("testMchAPIv3Key0"),
		now:            func() time.Time { return time.Unix(1624523846, 0) },
		maxSkew:        DefaultMaxSkew,
	}
	n, err := c.ParseNotification(h, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	const wantPlain = `{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c","create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}`
	if string(n.Plaintext) != wantPlain {
		t.Fatalf("plaintext = %s", n.Plaintext)
	}
	if n.ID != "3119dfba-e649-5eec-ab1e-3412bc4d2e17" || n.EventType != "PAYSCORE.USER_OPEN_SERVICE" ||
		n.Summary != "签约成功" || n.OriginalType != "payscore" || n.ResourceType != "encrypt-resource" {
		t.Fatalf("envelope = %+v", n)
	}
	if want := time.Date(2021, 6, 24, 8, 37, 26, 0, time.UTC); !n.CreateTime.Equal(want) {
		t.Fatalf("create time = %v", n.CreateTime)
	}
	if n.Transaction != nil || n.Refund != nil {
		t.Fatal("a PAYSCORE event must carry only Plaintext")
	}

	// The same vector one byte off, or too late, is refused before decryption.
	if _, err := c.ParseNotification(h, []byte(strings.Replace(body, "签约成功", "签约失败", 1))); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered body: err = %v, want ErrSignature", err)
	}
	c.now = func() time.Time { return time.Unix(1624523846, 0).Add(DefaultMaxSkew) }
	if _, err := c.ParseNotification(h, []byte(body)); !errors.Is(err, ErrSignature) {
		t.Fatalf("five minutes later: err = %v, want ErrSignature", err)
	}
	// Authentic, but the wrong APIv3 key: 400, not 401.
	c.now = func() time.Time { return time.Unix(1624523846, 0) }
	c.apiV3Key = []byte("testMchAPIv3Key1")
	if _, err := c.ParseNotification(h, []byte(body)); !errors.Is(err, ErrUndecryptable) || errors.Is(err, ErrSignature) {
		t.Fatalf("wrong APIv3 key: err = %v, want ErrUndecryptable only", err)
	}
}

// TestOpenResourceVectors: the AES-GCM vector of wechatpay-go
// (utils/aes_test.go, 16-byte key given as a string, as the API does) and an
// AES-256 vector with a 12-byte nonce and associated data from the Go
// standard library's crypto/cipher/gcm_test.go (byte keys).
func TestOpenResourceVectors(t *testing.T) {
	t.Run("wechatpay-go", func(t *testing.T) {
		pt, err := openResource([]byte("testAPIv3Key0000"), []byte("wCq51qZv4Yfg"), []byte("Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8"), "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC")
		if err != nil || string(pt) != "Hello World" {
			t.Fatalf("got %q, %v", pt, err)
		}
		if _, err := openResource([]byte("testAPIv3Key1111"), []byte("wCq51qZv4Yfg"), []byte("Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8"), "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"); err == nil {
			t.Fatal("wrong key decrypted")
		}
	})
	t.Run("AES-256 go/src/crypto/cipher", func(t *testing.T) {
		unhex := func(s string) []byte {
			b, err := hex.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		key := unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
		nonce := unhex("e1934f5db57cc983e6b180e7")
		plaintext := unhex("73ed042327f70fe9c572a61545eda8b2a0c6e1d6c291ef19248e973aee6c312012f490c2c6f6166f4a59431e182663fcaea05a")
		aad := unhex("0a8a18a7150e940c3d87b38e73baee9a5c049ee21795663e264b694a949822b639092d0e67015e86363583fcf0ca645af9f43375f05fdb4ce84f411dcbca73c2220dea03a20115d2e51398344b16bee1ed7c499b353d6c597af8")
		ct := base64.StdEncoding.EncodeToString(unhex("fc1ae2b5dcd2c4176c3f538b4c3cc21197f79e608cc3730167936382e4b1e5a7b75ae1678bcebd876705477eb0e0fdbbcda92fb9a0dc58c8d8f84fb590e0422e6077ef"))
		pt, err := openResource(key, nonce, aad, ct)
		if err != nil || string(pt) != string(plaintext) {
			t.Fatalf("got %x, %v", pt, err)
		}
		if _, err := openResource(key, nonce, aad[1:], ct); err == nil {
			t.Fatal("decrypted with the wrong associated data")
		}
	})
	t.Run("malformed input fails cleanly", func(t *testing.T) {
		key := []byte(strings.Repeat("k", 32))
		for _, tc := range []struct{ nonce, ct string }{
			{"123456789012", "not base64!"},
			{"short", base64.StdEncoding.EncodeToString(make([]byte, 32))},
			{"123456789012", base64.StdEncoding.EncodeToString(make([]byte, 15))},
			{"123456789012", ""},
		} {
			if _, err := openResource(key, []byte(tc.nonce), nil, tc.ct); err == nil {
				t.Errorf("nonce %q ct %q: no error", tc.nonce, tc.ct)
			}
		}
	})
}
