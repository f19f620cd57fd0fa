package wxsim

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// subscribeValue is {"value": …}. silenceper declares Value as interface{},
// so numbers arrive as JSON numbers; the server reads them as text.
type subscribeValue struct {
	Value json.RawMessage `json:"value"`
}

func (v subscribeValue) text() string {
	raw := bytes.TrimSpace(v.Value)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return string(raw)
	}
	return ""
}

// keywordRule returns the value check for a keyword name such as "thing1" or
// "character_string12": the type is the name without its trailing digits.
func keywordRule(keyword string) (func(string) bool, bool) {
	typ := strings.TrimRight(keyword, "0123456789")
	if typ == keyword { // a keyword always ends in its index
		return nil, false
	}
	rule, ok := keywordRules()[typ]
	return rule, ok
}

var (
	reNumber   = regexp.MustCompile(`^-?\d+(\.\d+)?$`)
	reLetter   = regexp.MustCompile(`^[A-Za-z]+$`)
	reCharStr  = regexp.MustCompile(`^[\x21-\x7E]+$`)
	reAmount   = regexp.MustCompile(`^(¥|￥|\$)?\d{1,10}(\.\d{1,2})?元?$`)
	rePhone    = regexp.MustCompile(`^\+?[\d\- ]+$`)
	rePhrase   = regexp.MustCompile(`^\p{Han}{1,5}$`)
	reCJK      = regexp.MustCompile(`\p{Han}`)
	reTimeSpan = regexp.MustCompile(`\s*~\s*`)
)

// keywordRules encodes the documented value rules (WECHAT-PROTOCOLS §1.5).
func keywordRules() map[string]func(string) bool {
	runes := utf8.RuneCountInString
	return map[string]func(string) bool{
		"thing":            func(v string) bool { return runes(v) <= 20 },
		"number":           func(v string) bool { return len(v) <= 32 && reNumber.MatchString(v) },
		"letter":           func(v string) bool { return len(v) <= 32 && reLetter.MatchString(v) },
		"symbol":           func(v string) bool { return runes(v) <= 5 && isSymbols(v) },
		"character_string": func(v string) bool { return len(v) <= 32 && reCharStr.MatchString(v) },
		"time":             isTimeValue,
		"date":             isTimeValue,
		"amount":           func(v string) bool { return reAmount.MatchString(v) },
		"phone_number":     func(v string) bool { return len(v) <= 17 && rePhone.MatchString(v) },
		"car_number":       func(v string) bool { return runes(v) <= 8 },
		"name": func(v string) bool {
			if reCJK.MatchString(v) {
				return runes(v) <= 10
			}
			return len(v) <= 20
		},
		"phrase": func(v string) bool { return rePhrase.MatchString(v) },
	}
}

func isSymbols(v string) bool {
	for _, r := range v {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// timeLayouts are the formats the docs show for time/date keywords
// ("15:01", "2019年10月1日 15:01", "2019-10-01 15:01", ranges with "~").
var timeLayouts = []string{
	"15:04", "15:04:05",
	"2006-01-02", "2006-01-02 15:04", "2006-01-02 15:04:05",
	"2006/01/02", "2006/01/02 15:04",
	"2006年1月2日", "2006年1月2日 15:04", "2006年1月2日 15:04:05", "2006年01月02日 15:04",
	"1月2日", "1月2日 15:04",
}

func isTimeValue(v string) bool {
	for _, part := range reTimeSpan.Split(v, 2) {
		ok := false
		for _, layout := range timeLayouts {
			if _, err := time.Parse(layout, part); err == nil {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// validateSubscribeData requires exactly the template's keywords with valid
// values. Unknown keywords are rejected too: stricter than silently dropping
// them, so a gateway using the wrong template layout finds out in tests.
func validateSubscribeData(keywords []string, data map[string]subscribeValue) (map[string]string, error) {
	out := make(map[string]string, len(keywords))
	for _, kw := range keywords {
		v, ok := data[kw]
		if !ok {
			return nil, wxErr(errTemplateData, "argument invalid! data.%s.value is empty", kw)
		}
		text := v.text()
		rule, _ := keywordRule(kw)
		if text == "" || !rule(text) {
			return nil, wxErr(errTemplateData, "argument invalid! data.%s.value invalid", kw)
		}
		out[kw] = text
	}
	for kw := range data {
		if _, ok := out[kw]; !ok {
			return nil, wxErr(errTemplateData, "argument invalid! data.%s not in template", kw)
		}
	}
	return out, nil
}
