package members

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

const good = `member_no,name,phone,tier,points,joined_at
A001,张三,13800000001,gold,1200,2023-05-01
A002,李四,,silver,0,2024/01/15
A003,王五,+86 139-0000-0002,GOLD,35,2022-12-31 09:30:00
`

func TestParseGood(t *testing.T) {
	p, err := ParseCSV(strings.NewReader(good), 1<<20)
	if err != nil || len(p.Errors) != 0 {
		t.Fatalf("%v %+v", err, p.Errors)
	}
	if len(p.Rows) != 3 || p.Encoding != "UTF-8" {
		t.Fatalf("rows %d encoding %q", len(p.Rows), p.Encoding)
	}
	r := p.Rows[0]
	if r.MemberNo != "A001" || r.Name != "张三" || r.Phone != "8613800000001" || r.Tier != "gold" || r.Points != 1200 || r.Line != 2 {
		t.Errorf("row 1: %+v", r)
	}
	if got := r.JoinedAt.In(shanghai).Format("2006-01-02 15:04"); got != "2023-05-01 00:00" {
		t.Errorf("joined_at %s", got)
	}
	if p.Rows[1].Phone != "" || p.Rows[2].Tier != "gold" || p.Rows[2].Phone != "8613900000002" {
		t.Errorf("rows 2–3: %+v %+v", p.Rows[1], p.Rows[2])
	}
}

func TestEncodings(t *testing.T) {
	chinese := "会员号,姓名,手机号,等级,积分,入会日期\nB001,赵六,13700000000,普通,10,2024-02-02\n"
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(chinese)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ in, enc string }{
		"utf8 bom":        {"\xef\xbb\xbf" + chinese, "UTF-8 with BOM"},
		"gbk from excel":  {gbk, "GBK (converted)"},
		"chinese headers": {chinese, "UTF-8"},
	} {
		p, err := ParseCSV(strings.NewReader(tc.in), 1<<20)
		if err != nil || len(p.Rows) != 1 || p.Encoding != tc.enc {
			t.Errorf("%s: %v %+v", name, err, p)
			continue
		}
		if p.Rows[0].Name != "赵六" || p.Rows[0].Tier != "普通" {
			t.Errorf("%s: %+v", name, p.Rows[0])
		}
	}
	if _, err := ParseCSV(strings.NewReader("member_no\n\xff\xfe\xfd\x80\x81"), 1<<20); err == nil || !strings.Contains(err.Error(), "CSV UTF-8") {
		t.Errorf("garbage encoding: %v", err)
	}
}

func TestRowErrorsCarryLines(t *testing.T) {
	in := `member_no,name,phone,tier,points,joined_at
A001,张三,13800000001,gold,1200,2023-05-01
bad no!,李四,,silver,0,2024-01-15
A003,王五,12345,gold,1,2024-01-15
A004,赵六,,gold,-5,2024-01-15
A005,钱七,,gold,5,yesterday
A001,重复,,gold,5,2024-01-15
A007,孙八,13800000001,gold,5,2024-01-15
A008,,,,5,2024-01-15
`
	p, err := ParseCSV(strings.NewReader(in), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{3: "member_no", 4: "手机号", 5: "points", 6: "joined_at", 7: "duplicate member_no, first on line 2", 8: "duplicate phone, first on line 2", 9: "tier"}
	if len(p.Errors) != len(want) {
		t.Fatalf("%d errors, want %d: %+v", len(p.Errors), len(want), p.Errors)
	}
	for _, e := range p.Errors {
		if !strings.Contains(e.Message, want[e.Line]) {
			t.Errorf("line %d: %q should mention %q", e.Line, e.Message, want[e.Line])
		}
	}
	if len(p.Rows) != 1 {
		t.Errorf("good rows %d", len(p.Rows))
	}
	if _, err := ParseCSV(strings.NewReader("member_no,name\nA1,x\n"), 1<<20); err == nil || !strings.Contains(err.Error(), "phone") {
		t.Errorf("missing columns: %v", err)
	}
	if _, err := ParseCSV(strings.NewReader(good), 10); err == nil {
		t.Error("size limit not enforced")
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("member_no,name,phone,tier,points,joined_at\n\"unterminated,x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseCSV(strings.NewReader(string(data)), 1<<20)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range p.Rows {
			if r.MemberNo == "" || r.Tier == "" || r.JoinedAt.IsZero() || seen[r.MemberNo] {
				t.Fatalf("accepted a bad or duplicate row: %+v", r)
			}
			seen[r.MemberNo] = true
		}
	})
}
