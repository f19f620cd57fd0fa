package msgcrypt

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

type sample struct {
	Token          string `json:"token"`
	EncodingAESKey string `json:"encoding_aes_key"`
	ReceiveID      string `json:"receive_id"`
	VerifyURL      struct {
		MsgSignature string `json:"msg_signature"`
		Timestamp    string `json:"timestamp"`
		Nonce        string `json:"nonce"`
		Echostr      string `json:"echostr"`
	} `json:"verify_url"`
	Message struct {
		MsgSignature    string            `json:"msg_signature"`
		Timestamp       string            `json:"timestamp"`
		Nonce           string            `json:"nonce"`
		Body            string            `json:"body"`
		Encrypt         string            `json:"encrypt"`
		PlaintextFields map[string]string `json:"plaintext_fields"`
	} `json:"message"`
}

func loadSample(t *testing.T) sample {
	t.Helper()
	b, err := os.ReadFile("testdata/wecom_sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var s sample
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPublishedSampleVerifyURL checks the URL-verification vector WeCom
// publishes with its callback libraries.
func TestPublishedSampleVerifyURL(t *testing.T) {
	s := loadSample(t)
	c, err := New(s.Token, s.EncodingAESKey, s.ReceiveID)
	if err != nil {
		t.Fatal(err)
	}
	v := s.VerifyURL
	if err := c.Verify(v.MsgSignature, v.Timestamp, v.Nonce, v.Echostr); err != nil {
		t.Fatalf("published signature rejected: %v", err)
	}
	plain, err := c.Decrypt(v.Echostr)
	if err != nil {
		t.Fatalf("published echostr: %v", err)
	}
	if !regexp.MustCompile(`^\d+$`).Match(plain) {
		t.Errorf("echostr plaintext %q is not the digits WeCom sends", plain)
	}
}

func TestPublishedSampleMessage(t *testing.T) {
	s := loadSample(t)
	c, err := New(s.Token, s.EncodingAESKey, s.ReceiveID)
	if err != nil {
		t.Fatal(err)
	}
	m := s.Message
	var env struct {
		Encrypt string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal([]byte(m.Body), &env); err != nil || env.Encrypt != m.Encrypt {
		t.Fatalf("envelope: %v", err)
	}
	if err := c.Verify(m.MsgSignature, m.Timestamp, m.Nonce, env.Encrypt); err != nil {
		t.Fatalf("published msg_signature rejected: %v", err)
	}
	plain, err := c.Decrypt(env.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	var cur struct {
		XMLName xml.Name
		Inner   []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(plain, &cur); err != nil {
		t.Fatalf("plaintext is not XML: %v\n%s", err, plain)
	}
	for _, f := range cur.Inner {
		fields[f.XMLName.Local] = strings.TrimSpace(f.Value)
	}
	for k, want := range m.PlaintextFields {
		if fields[k] != want {
			t.Errorf("%s = %q, want %q", k, fields[k], want)
		}
	}
	// One changed character in the signed material fails the signature.
	if err := c.Verify(m.MsgSignature, m.Timestamp, "1372623148", env.Encrypt); !errors.Is(err, ErrSignature) {
		t.Errorf("altered nonce: %v", err)
	}
	// The same ciphertext opened for another receiver is refused.
	other, _ := New(s.Token, s.EncodingAESKey, "ww0000000000000000")
	if _, err := other.Decrypt(env.Encrypt); !errors.Is(err, ErrReceiver) {
		t.Errorf("foreign receiver: %v", err)
	}
}

func TestRoundTripAndPadding(t *testing.T) {
	c, err := New("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1234567890abcdef")
	if err != nil {
		t.Fatal(err)
	}
	// Lengths around the 32-byte block: a plaintext that is already aligned
	// must still get a full block of padding.
	for n := 0; n < 80; n++ {
		msg := []byte(strings.Repeat("鱼", n/3) + strings.Repeat("x", n%3))
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decrypt(enc)
		if err != nil || string(got) != string(msg) {
			t.Fatalf("len %d: got %q, %v", len(msg), got, err)
		}
	}
}

func TestDecryptRejectsMalformed(t *testing.T) {
	c, _ := New("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1234567890abcdef")
	good, _ := c.Encrypt([]byte("<xml/>"))
	raw := []byte(good)
	tests := map[string]string{
		"not base64":     "%%%",
		"empty":          "",
		"not block size": "AAAA",
		"truncated":      good[:len(good)-24] + "==",
		"flipped":        string(append([]byte{raw[0] ^ 1}, raw[1:]...)),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decrypt(in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrReceiver) {
				t.Errorf("unexpected error class: %v", err)
			}
		})
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, key := range []string{"", "short", strings.Repeat("!", 43), "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"} {
		if _, err := New("t", key, "r"); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
}

func FuzzDecrypt(f *testing.F) {
	c, _ := New("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1234567890abcdef")
	good, _ := c.Encrypt([]byte("<xml><a>1</a></xml>"))
	f.Add(good)
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Fuzz(func(t *testing.T, in string) {
		msg, err := c.Decrypt(in)
		if err == nil {
			// Whatever decrypts must re-encrypt and decrypt to itself.
			enc, _ := c.Encrypt(msg)
			back, err := c.Decrypt(enc)
			if err != nil || string(back) != string(msg) {
				t.Fatalf("round trip of accepted input failed: %v", err)
			}
		}
	})
}
