package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeMembersCSV makes an export of n members.
func writeMembersCSV(t testing.TB, dir string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("member_no,name,phone,tier,points,joined_at\n")
	tiers := []string{"regular", "silver", "gold"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "M%06d,会员%d,1%010d,%s,%d,2023-%02d-%02d\n", i, i, 3500000000+i, tiers[i%3], i%5000, i%12+1, i%28+1)
	}
	path := filepath.Join(dir, fmt.Sprintf("members-%d.csv", n))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMembersImportCommand(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "x.db"), "TACKLEGATE_DATA_KEY": testDataKey}
	file := writeMembersCSV(t, dir, 500)
	code, out, errOut := runCmd(t, vars, "members", "import", file)
	if code != exitOK || !strings.Contains(out, "500 created, 0 updated, 0 unchanged") {
		t.Fatalf("import: %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "500/500") || !strings.Contains(errOut, "[####################]") {
		t.Errorf("no progress bar:\n%s", errOut)
	}
	code, out, _ = runCmd(t, vars, "members", "import", file)
	if code != exitOK || !strings.Contains(out, "0 created, 0 updated, 500 unchanged") {
		t.Errorf("re-run: %d %s", code, out)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("member_no,name,phone,tier,points,joined_at\nN1,新人,,gold,1,2024-01-01\nN2,坏,12,gold,1,2024-01-01\nN3,坏,,gold,x,2024-01-01\n"), 0o644) //nolint:errcheck
	code, _, errOut = runCmd(t, vars, "members", "import", bad)
	if code != exitFail || !strings.Contains(errOut, "bad.csv:3:") || !strings.Contains(errOut, "bad.csv:4:") || !strings.Contains(errOut, "nothing was imported") {
		t.Errorf("bad file: %d\n%s", code, errOut)
	}
	// A phone already held by another member is refused by the database
	// step: still nothing imported.
	clash := filepath.Join(dir, "clash.csv")
	os.WriteFile(clash, []byte("member_no,name,phone,tier,points,joined_at\nN9,新人,,gold,1,2024-01-01\nN10,撞号,13500000001,gold,1,2024-01-01\n"), 0o644) //nolint:errcheck
	code, _, errOut = runCmd(t, vars, "members", "import", clash)
	if code != exitFail || !strings.Contains(errOut, "clash.csv:3:") || !strings.Contains(errOut, "M000001") {
		t.Errorf("clashing phone: %d\n%s", code, errOut)
	}
	code, out, _ = runCmd(t, vars, "members", "import", file)
	if !strings.Contains(out, "500 unchanged") {
		t.Errorf("a refused file changed something: %s", out)
	}
	if code, _, _ := runCmd(t, vars, "members", "export"); code != exitUsage {
		t.Errorf("members export: %d", code)
	}
}
