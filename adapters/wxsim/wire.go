package wxsim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/silenceper/wechat/v2/util"
)

// field is one element of a pushed message. Messages are rendered by hand
// rather than through encoding/xml so that element order and CDATA sections
// match what WeChat sends byte for byte.
type field struct {
	name   string
	value  string
	number bool // rendered without CDATA / quotes
}

func str(name, value string) field { return field{name: name, value: value} }

func num(name string, v int64) field {
	return field{name: name, value: strconv.FormatInt(v, 10), number: true}
}

func cdata(v string) string {
	return "<![CDATA[" + strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>") + "]]>"
}

func renderXML(fields []field) string {
	var b strings.Builder
	b.WriteString("<xml>")
	for _, f := range fields {
		b.WriteString("<" + f.name + ">")
		if f.number {
			b.WriteString(f.value)
		} else {
			b.WriteString(cdata(f.value))
		}
		b.WriteString("</" + f.name + ">")
	}
	b.WriteString("</xml>")
	return b.String()
}

func renderJSON(fields []field) string {
	var b strings.Builder
	b.WriteString("{")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(",")
		}
		k, _ := json.Marshal(f.name)
		b.Write(k)
		b.WriteString(":")
		if f.number {
			b.WriteString(f.value)
		} else {
			v, _ := json.Marshal(f.value)
			b.Write(v)
		}
	}
	b.WriteString("}")
	return b.String()
}

func render(format string, fields []field) string {
	if format == FormatJSON {
		return renderJSON(fields)
	}
	return renderXML(fields)
}

// encrypt is the WXBizMsgCrypt encryption (§2.4) via silenceper's util, an
// implementation independent of the gateway's own.
func encrypt(plaintext []byte, receiveID, aesKey string) (string, error) {
	random := make([]byte, 16)
	_, _ = rand.Read(random)
	// silenceper's "random" is used as raw bytes; real servers use 16 ASCII
	// alphanumerics, which is what we hand it.
	for i := range random {
		random[i] = alnum[int(random[i])%len(alnum)]
	}
	out, err := util.EncryptMsg(random, plaintext, receiveID, aesKey)
	if err != nil {
		return "", fmt.Errorf("wxsim: encrypt: %w", err)
	}
	return string(out), nil
}

// nonce imitates the numeric nonces WeChat sends.
func nonce() string { return randomString(10, digitSet) }
