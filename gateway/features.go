package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Feature flags: gradual rollout of customer-facing features.
//
// A member's place in a rollout is a bucket 0–9999 from SHA-256 of the
// flag key and the member id, so it is the same on every instance and after
// every restart, independent between flags (the 10% who see video help are
// not the 10% who see the assistant), and a member who is in at 10% stays
// in at 20%. The decision, in order:
//
//  1. on the deny list → off;
//  2. on the allow list (members, or staff testers) → on, even while the
//     flag is disabled or paused: testers keep testing;
//  3. disabled or paused → off;
//  4. tiers set and the member's tier not among them → off;
//  5. bucket < percent × 100 → on.
//
// An anonymous caller gets a flag only when it is fully on: enabled, not
// paused, 100%, every tier.
//
// Flags are read from the database every few seconds (FeaturesRefresh) and
// after every change made here, so Enabled is a map look-up and a hash.

// Feature keys the code knows about.
const (
	FeatureVideoHelp = "video_help"
	FeatureAssistant = "assistant"
	FeatureQuickHelp = "quick_help"
	FeatureInAppChat = "in_app_chat"
)

// DefaultFeatures are the flags created at first start. They start fully
// on, as the features behaved before flags existed; the owner dials them
// down or rolls a new one out from 0.
func DefaultFeatures() []store.FeatureFlag {
	week := 7 * 24 * time.Hour
	return []store.FeatureFlag{
		{Key: FeatureVideoHelp, Description: "视频/语音求助（快捷求助里的视频和语音按钮）", Enabled: true, Percent: 100,
			KPI: store.KPICallConnect, MinSample: 30, Threshold: 0.15, Window: week},
		{Key: FeatureAssistant, Description: "AI 客服自动回答", Enabled: true, Percent: 100,
			KPI: store.KPIAssistantUnresolved, MinSample: 30, Threshold: 0.15, Window: week},
		{Key: FeatureQuickHelp, Description: "快捷求助入口", Enabled: true, Percent: 100,
			KPI: store.KPICallConnect, MinSample: 30, Threshold: 0.15, Window: week},
		{Key: FeatureInAppChat, Description: "小程序内聊天", Enabled: true, Percent: 100,
			KPI: store.KPILowRating, MinSample: 30, Threshold: 0.15, Window: week},
	}
}

// FeaturesRefresh is how often flags are re-read from the database, so
// that another instance's change applies here.
const FeaturesRefresh = 5 * time.Second

// Features decides flags; it is safe for concurrent use.
type Features struct {
	db     *store.DB
	logger *slog.Logger
	// OwnerWeCom is the owner's WeCom userid, told when a guard rail
	// pauses a rollout ("" : the pause is only audited and logged).
	OwnerWeCom string
	// Now is the guard rail's clock (default time.Now).
	Now func() time.Time

	mu    sync.RWMutex
	flags map[string]store.FeatureFlag
}

// NewFeatures creates the default flags that are missing and loads them.
func NewFeatures(ctx context.Context, db *store.DB, logger *slog.Logger) (*Features, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Features{db: db, logger: logger.With("component", "features"), flags: map[string]store.FeatureFlag{}}
	if err := db.EnsureFeatureFlags(ctx, DefaultFeatures()); err != nil {
		return nil, err
	}
	if err := f.Reload(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads every flag from the database.
func (f *Features) Reload(ctx context.Context) error {
	list, err := f.db.FeatureFlags(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]store.FeatureFlag, len(list))
	for _, fl := range list {
		m[fl.Key] = fl
	}
	f.mu.Lock()
	f.flags = m
	f.mu.Unlock()
	return nil
}

func (f *Features) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Flags returns every flag, by key.
func (f *Features) Flags() []store.FeatureFlag {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]store.FeatureFlag, 0, len(f.flags))
	for _, fl := range f.flags {
		out = append(out, fl)
	}
	slices.SortFunc(out, func(a, b store.FeatureFlag) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

// FeatureBucket is a member's place 0–9999 in a flag's rollout.
func FeatureBucket(key string, memberID int64) int {
	sum := sha256.Sum256([]byte(key + "\x00" + strconv.FormatInt(memberID, 10)))
	return int(binary.BigEndian.Uint64(sum[:8]) % 10000)
}

// FeatureSubject is who a flag is decided for: a member (MemberID > 0,
// with a tier), a staff member (Staff), or nobody (anonymous).
type FeatureSubject struct {
	MemberID int64
	Tier     string
	Staff    string
}

// decideFlag applies the rules in the package comment to one flag.
func decideFlag(fl store.FeatureFlag, s FeatureSubject) bool {
	listed := func(list []store.FeatureListEntry) bool {
		for _, e := range list {
			if (s.MemberID > 0 && e.MemberID == s.MemberID) || (s.Staff != "" && e.Staff == s.Staff) {
				return true
			}
		}
		return false
	}
	switch {
	case listed(fl.Deny):
		return false
	case listed(fl.Allow):
		return true
	case !fl.Enabled || fl.Paused():
		return false
	}
	fully := fl.Percent >= 100 && len(fl.Tiers) == 0
	if s.MemberID <= 0 {
		return fully // anonymous, or staff not on the allow list
	}
	if len(fl.Tiers) > 0 && !slices.Contains(fl.Tiers, s.Tier) {
		return false
	}
	return FeatureBucket(fl.Key, s.MemberID) < fl.Percent*100
}

// Enabled reports whether a flag is on for a member (memberID 0:
// anonymous). An unknown flag is off.
func (f *Features) Enabled(ctx context.Context, memberID int64, tier, key string) bool {
	return f.EnabledFor(FeatureSubject{MemberID: memberID, Tier: tier}, key)
}

// EnabledFor reports whether a flag is on for s.
func (f *Features) EnabledFor(s FeatureSubject, key string) bool {
	f.mu.RLock()
	fl, ok := f.flags[key]
	f.mu.RUnlock()
	return ok && decideFlag(fl, s)
}

// For returns every flag's decision for s.
func (f *Features) For(s FeatureSubject) map[string]bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]bool, len(f.flags))
	for k, fl := range f.flags {
		out[k] = decideFlag(fl, s)
	}
	return out
}

// Update changes a flag through the store (audited) and applies it here at
// once.
func (f *Features) Update(ctx context.Context, key string, ch store.FeatureChange, fn func(*store.FeatureFlag) error) (before, after store.FeatureFlag, err error) {
	before, after, err = f.db.UpdateFeatureFlag(ctx, key, ch, fn)
	if err != nil {
		return before, after, err
	}
	f.mu.Lock()
	f.flags[key] = after
	f.mu.Unlock()
	return before, after, nil
}

// Run re-reads the flags every FeaturesRefresh and runs the guard rails
// every guardEvery (0: never) until ctx ends.
func (f *Features) Run(ctx context.Context, guardEvery time.Duration) {
	refresh := time.NewTicker(FeaturesRefresh)
	defer refresh.Stop()
	var guard <-chan time.Time
	if guardEvery > 0 {
		t := time.NewTicker(guardEvery)
		defer t.Stop()
		guard = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			if err := f.Reload(ctx); err != nil && ctx.Err() == nil {
				f.logger.Warn("feature flags not reloaded", "error", err)
			}
		case <-guard:
			if _, err := f.Guard(ctx); err != nil && ctx.Err() == nil {
				f.logger.Warn("feature guard rails failed", "error", err)
			}
		}
	}
}

// validFeatureKey is what a flag key may look like.
func validFeatureKey(k string) bool {
	if k == "" || len(k) > 40 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

var errUnknownKPI = func(k string) error {
	return rental.Errorf("features.kpi", rental.KindInvalid, "未知的指标 %q（可选 %v） (unknown KPI)", k, store.GuardKPIs)
}
