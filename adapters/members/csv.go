// Package members connects tacklegate to the shop's existing membership
// system: it reads the system's CSV export for import, and tells the system
// about members created and linked here through a signed webhook.
package members

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// columns maps header names, English or Chinese, to the fields.
var columns = map[string]string{
	"member_no": "member_no", "会员号": "member_no", "会员编号": "member_no", "卡号": "member_no",
	"name": "name", "姓名": "name",
	"phone": "phone", "手机": "phone", "手机号": "phone", "电话": "phone",
	"tier": "tier", "等级": "tier", "会员等级": "tier",
	"points": "points", "积分": "points",
	"joined_at": "joined_at", "入会日期": "joined_at", "入会时间": "joined_at",
}

var required = []string{"member_no", "name", "phone", "tier", "points", "joined_at"}

var memberNoRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Parsed is a whole file, read.
type Parsed struct {
	Rows     []store.MemberImport
	Errors   []store.RowError
	Encoding string // "UTF-8", "UTF-8 with BOM" or "GBK (converted)"
}

// ParseCSV reads a membership export. Every bad row is reported with its
// line number; Rows holds only the good ones, and the caller imports nothing
// unless Errors is empty.
func ParseCSV(r io.Reader, maxBytes int64) (*Parsed, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, rental.Wrap("members.ParseCSV", rental.KindInvalid, "无法读取文件 (cannot read the file)", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, rental.Errorf("members.ParseCSV", rental.KindInvalid, "文件太大（上限 %d MB） (file larger than %d MB)", maxBytes>>20, maxBytes>>20)
	}
	text, enc, err := decodeText(data)
	if err != nil {
		return nil, err
	}
	p := &Parsed{Encoding: enc}
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, rental.Wrap("members.ParseCSV", rental.KindInvalid, "文件没有表头 (no header row)", err)
	}
	index := map[string]int{}
	for i, h := range header {
		if f, ok := columns[strings.ToLower(strings.TrimSpace(h))]; ok {
			index[f] = i
		}
	}
	var missing []string
	for _, f := range required {
		if _, ok := index[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return nil, rental.Errorf("members.ParseCSV", rental.KindInvalid,
			"表头缺少列：%s (missing columns: %s; expected member_no,name,phone,tier,points,joined_at)", strings.Join(missing, ", "), strings.Join(missing, ", "))
	}
	seenNo := map[string]int{}
	seenPhone := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			p.Errors = append(p.Errors, store.RowError{Line: line, Message: "CSV 格式错误 (malformed CSV): " + err.Error()})
			if errors.As(err, &pe) && pe.Err == csv.ErrQuote {
				break // the rest of the file cannot be trusted after a quote error
			}
			continue
		}
		line, _ := cr.FieldPos(0) // valid only for a record read without error
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		row, msg := parseRow(rec, index, line)
		if msg != "" {
			p.Errors = append(p.Errors, store.RowError{Line: line, Message: msg})
			continue
		}
		if first, dup := seenNo[row.MemberNo]; dup {
			p.Errors = append(p.Errors, store.RowError{Line: line, Message: fmt.Sprintf("会员号 %s 与第 %d 行重复 (duplicate member_no, first on line %d)", row.MemberNo, first, first)})
			continue
		}
		seenNo[row.MemberNo] = line
		if row.Phone != "" {
			if first, dup := seenPhone[row.Phone]; dup {
				p.Errors = append(p.Errors, store.RowError{Line: line, Message: fmt.Sprintf("手机号与第 %d 行重复 (duplicate phone, first on line %d)", first, first)})
				continue
			}
			seenPhone[row.Phone] = line
		}
		p.Rows = append(p.Rows, row)
	}
	return p, nil
}

func parseRow(rec []string, index map[string]int, line int) (store.MemberImport, string) {
	get := func(f string) string {
		if i := index[f]; i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	r := store.MemberImport{Line: line, MemberNo: get("member_no"), Name: get("name"), Tier: rental.Tier(strings.ToLower(get("tier")))}
	if !memberNoRE.MatchString(r.MemberNo) {
		return r, fmt.Sprintf("会员号 %q 无效：1–32 位字母、数字、- 或 _ (member_no must be 1–32 letters, digits, - or _)", r.MemberNo)
	}
	if utf8.RuneCountInString(r.Name) > 50 {
		return r, "姓名太长（上限 50 字） (name longer than 50 characters)"
	}
	if phone := get("phone"); phone != "" {
		n, err := rental.NormalizePhone(phone)
		if err != nil {
			return r, rental.ErrorMessage(err)
		}
		r.Phone = n
	}
	if r.Tier == "" || utf8.RuneCountInString(string(r.Tier)) > 20 {
		return r, "会员等级为空或太长 (tier is empty or longer than 20 characters)"
	}
	if pts := get("points"); pts != "" {
		n, err := strconv.ParseInt(pts, 10, 64)
		if err != nil || n < 0 {
			return r, fmt.Sprintf("积分 %q 不是非负整数 (points must be a whole number ≥ 0)", pts)
		}
		r.Points = n
	}
	joined, err := parseDate(get("joined_at"))
	if err != nil {
		return r, err.Error()
	}
	r.JoinedAt = joined
	return r, ""
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("入会日期为空 (joined_at is empty)")
	}
	for _, layout := range []string{"2006-01-02", "2006/01/02", "2006-01-02 15:04:05", "2006/01/02 15:04:05", "2006/1/2", "2006-1-2", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, shanghai); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("入会日期 %q 无法识别，请用 2024-03-15 格式 (joined_at %q: use YYYY-MM-DD)", s, s)
}

// decodeText accepts UTF-8 (with or without BOM) and GBK, the encoding
// Chinese Excel saves CSV in; anything else is refused rather than guessed.
func decodeText(data []byte) (text, encoding string, err error) {
	if b, ok := bytes.CutPrefix(data, []byte("\xef\xbb\xbf")); ok {
		if !utf8.Valid(b) {
			return "", "", rental.Errorf("members.ParseCSV", rental.KindInvalid, "文件声明为 UTF-8 但内容不是 (file has a UTF-8 BOM but is not UTF-8)")
		}
		return string(b), "UTF-8 with BOM", nil
	}
	if utf8.Valid(data) {
		return string(data), "UTF-8", nil
	}
	decoded, derr := simplifiedchinese.GBK.NewDecoder().Bytes(data)
	if derr == nil && utf8.Valid(decoded) && !bytes.ContainsRune(decoded, utf8.RuneError) {
		return string(decoded), "GBK (converted)", nil
	}
	return "", "", rental.Errorf("members.ParseCSV", rental.KindInvalid,
		"文件编码无法识别：请在 Excel 中另存为「CSV UTF-8」 (the file is neither UTF-8 nor GBK; save it as CSV UTF-8)")
}
