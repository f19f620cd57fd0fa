package main

import (
	"path/filepath"
	"testing"
)

// TestDemoRolloutReachesATenthStably is issue 10's check on the demo: the
// owner rolls video help out to 10 %; about a tenth of the seeded members
// get it, and after a restart the same number do (the bucket is a hash of
// flag and member, not a random draw), with the setting kept.
func TestDemoRolloutReachesATenthStably(t *testing.T) {
	vars := map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "demo.db")}
	type flag struct {
		Key     string `json:"key"`
		Percent int    `json:"percent"`
		Version int    `json:"version"`
		Reach   int    `json:"reach"`
		Members int    `json:"members"`
	}
	videoHelp := func(r *running, tok string) flag {
		t.Helper()
		var list struct {
			Flags []flag `json:"flags"`
		}
		if st := callAPI(t, "GET", r.base+"/api/v1/owner/features", tok, nil, &list); st != 200 {
			t.Fatalf("GET /owner/features: %d", st)
		}
		for _, f := range list.Flags {
			if f.Key == "video_help" {
				return f
			}
		}
		t.Fatal("no video_help flag")
		return flag{}
	}

	r := start(t, vars, "demo")
	tok := ownerToken(t, r)
	before := videoHelp(r, tok)
	if before.Members < demoMemberCount || before.Reach != before.Members {
		t.Fatalf("before the rollout: %+v, want every one of ≥ %d members", before, demoMemberCount)
	}
	var changed map[string]any
	if st := callAPI(t, "PUT", r.base+"/api/v1/owner/features/video_help", tok, map[string]any{"version": before.Version, "percent": 10}, &changed); st != 200 {
		t.Fatalf("roll out to 10%%: %d %v", st, changed)
	}
	at10 := videoHelp(r, tok)
	// A tenth of 300, give or take three standard deviations of a fair draw
	// (√(300·0.1·0.9) ≈ 5.2).
	if at10.Percent != 10 || at10.Reach < 15 || at10.Reach > 45 {
		t.Errorf("at 10%%: %+v, want about %d members", at10, at10.Members/10)
	}
	t.Logf("video_help at 10%%: on for %d of %d members", at10.Reach, at10.Members)
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d\n%s", c, r.stderr)
	}

	r = start(t, vars, "demo")
	again := videoHelp(r, ownerToken(t, r))
	if again.Percent != 10 || again.Reach != at10.Reach || again.Members != at10.Members {
		t.Errorf("after a restart: %+v, before it %+v", again, at10)
	}
}
