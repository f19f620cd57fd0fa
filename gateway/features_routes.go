package gateway

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The feature-flag routes:
//
//	GET /api/v1/features                   anyone: {"features":{"video_help":true,…}} for the caller
//	GET /api/v1/owner/features             owner: every flag with its lists, targeting, guard rail and pause
//	PUT /api/v1/owner/features/:key        owner: change a flag (only the fields sent); audited
//	GET /api/v1/owner/features/audit       owner: the audit, newest first (?flag=&before=&limit=)
//	POST /api/v1/owner/features/guard      owner: run the guard rails now and see their figures

// MountFeatures adds the feature-flag routes. It needs the identity routes.
func (s *Server) MountFeatures(f *Features) {
	if s.auth == nil {
		panic("gateway: MountFeatures needs Options.Identity")
	}
	h := &featureHandlers{s: s, f: f}
	s.api("GET", "/features", anyone, h.mine)
	s.api("GET", "/owner/features", ownerOnly, h.list)
	s.api("GET", "/owner/features/audit", ownerOnly, h.audit)
	s.api("POST", "/owner/features/guard", ownerOnly, h.guard)
	s.api("PUT", "/owner/features/:key", ownerOnly, h.update)
}

type featureHandlers struct {
	s *Server
	f *Features
}

// featureSubject works out who calls a public route: anonymous without a token, a
// member, or a staff member. A token that is sent must be valid: a stale
// one is a 401, so the mini-program refreshes instead of silently getting
// the anonymous answer.
func (s *Server) featureSubject(c *fiber.Ctx) (FeatureSubject, error) {
	if c.Get(fiber.HeaderAuthorization) == "" {
		return FeatureSubject{}, nil
	}
	p, err := s.auth.authenticate(c.UserContext(), c.Get(fiber.HeaderAuthorization))
	if err != nil {
		return FeatureSubject{}, err
	}
	switch p.Role {
	case rental.RoleCustomer:
		c.Locals(localsPrincipal, p)
		m, err := s.CustomerMember(c)
		if err != nil {
			return FeatureSubject{}, err
		}
		return FeatureSubject{MemberID: int64(m.ID), Tier: string(m.Tier)}, nil
	case rental.RoleStaff:
		return FeatureSubject{Staff: p.Subject}, nil
	}
	return FeatureSubject{}, nil
}

func (h *featureHandlers) mine(c *fiber.Ctx) error {
	sub, err := h.s.featureSubject(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "private, max-age=30")
	return c.JSON(fiber.Map{"features": h.f.For(sub)})
}

// flagView is a flag with how many members it reaches now.
type flagView struct {
	store.FeatureFlag
	Reach   int `json:"reach"`   // members it is on for
	Members int `json:"members"` // live members
}

func (h *featureHandlers) list(c *fiber.Ctx) error {
	members, err := h.f.db.MemberTiers(c.UserContext())
	if err != nil {
		return err
	}
	flags := h.f.Flags()
	out := make([]flagView, len(flags))
	for i, fl := range flags {
		out[i] = flagView{FeatureFlag: fl, Members: len(members)}
		for _, m := range members {
			if decideFlag(fl, FeatureSubject{MemberID: m.ID, Tier: m.Tier}) {
				out[i].Reach++
			}
		}
	}
	tiers := []string{}
	for _, m := range members {
		if !slices.Contains(tiers, m.Tier) {
			tiers = append(tiers, m.Tier)
		}
	}
	slices.Sort(tiers)
	return c.JSON(fiber.Map{"flags": out, "kpis": store.GuardKPIs, "guard_z": GuardZ, "tiers": tiers})
}

// featureInput is a change from the console; absent fields stay as they
// are. Lists are what the owner typed (member numbers, member ids,
// staff:<userid>), resolved when saved.
type featureInput struct {
	Version     int       `json:"version"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
	Percent     *int      `json:"percent"`
	Allow       *[]string `json:"allow"`
	Deny        *[]string `json:"deny"`
	Tiers       *[]string `json:"tiers"`
	KPI         *string   `json:"kpi"`
	MinSample   *int      `json:"min_sample"`
	Threshold   *float64  `json:"threshold"`
	WindowHours *int      `json:"window_hours"`
	Paused      *bool     `json:"paused"`
	Reason      string    `json:"reason"`
}

func (h *featureHandlers) update(c *fiber.Ctx) error {
	const op = "features.update"
	key := strings.Clone(c.Params("key"))
	if !validFeatureKey(key) {
		return rental.Errorf(op, rental.KindNotFound, "没有这个功能开关 (no feature flag %q)", key)
	}
	var in featureInput
	if err := body(c, &in); err != nil {
		return err
	}
	ctx := c.UserContext()
	var allow, deny []store.FeatureListEntry
	var err error
	if in.Allow != nil {
		if allow, err = h.f.db.ResolveFeatureList(ctx, *in.Allow); err != nil {
			return err
		}
	}
	if in.Deny != nil {
		if deny, err = h.f.db.ResolveFeatureList(ctx, *in.Deny); err != nil {
			return err
		}
	}
	// A pause or resume is named as such in the audit; sending the state
	// the flag is already in is an ordinary update.
	action := "update"
	if in.Paused != nil {
		h.f.mu.RLock()
		cur, known := h.f.flags[key]
		h.f.mu.RUnlock()
		switch {
		case *in.Paused && (!known || !cur.Paused()):
			action = "pause"
		case !*in.Paused && known && cur.Paused():
			action = "resume"
		}
	}
	ch := store.FeatureChange{Actor: "owner:" + caller(c).Subject, Action: action, Reason: strings.TrimSpace(in.Reason), Version: in.Version}
	_, after, err := h.f.Update(ctx, key, ch, func(fl *store.FeatureFlag) error {
		if in.Description != nil {
			fl.Description = strings.TrimSpace(*in.Description)
		}
		if in.Enabled != nil {
			fl.Enabled = *in.Enabled
		}
		if in.Percent != nil {
			if *in.Percent < 0 || *in.Percent > 100 {
				return rental.Errorf(op, rental.KindInvalid, "比例应在 0–100 之间 (percent must be 0–100)")
			}
			fl.Percent = *in.Percent
		}
		if in.Allow != nil {
			fl.Allow = allow
		}
		if in.Deny != nil {
			fl.Deny = deny
		}
		if in.Tiers != nil {
			tiers := []string{}
			for _, t := range *in.Tiers {
				if t = strings.TrimSpace(t); t != "" && !slices.Contains(tiers, t) {
					tiers = append(tiers, t)
				}
			}
			fl.Tiers = tiers
		}
		if in.KPI != nil {
			if *in.KPI != "" && !slices.Contains(store.GuardKPIs, *in.KPI) {
				return errUnknownKPI(*in.KPI)
			}
			fl.KPI = *in.KPI
		}
		if in.MinSample != nil {
			if *in.MinSample < 1 || *in.MinSample > 1_000_000 {
				return rental.Errorf(op, rental.KindInvalid, "最小样本应在 1–1000000 之间 (min_sample out of range)")
			}
			fl.MinSample = *in.MinSample
		}
		if in.Threshold != nil {
			if *in.Threshold <= 0 || *in.Threshold >= 1 {
				return rental.Errorf(op, rental.KindInvalid, "阈值应在 0–1 之间，如 0.15 表示差 15 个百分点 (threshold must be between 0 and 1)")
			}
			fl.Threshold = *in.Threshold
		}
		if in.WindowHours != nil {
			if *in.WindowHours < 1 || *in.WindowHours > 24*90 {
				return rental.Errorf(op, rental.KindInvalid, "观察窗口应在 1 小时到 90 天之间 (window_hours out of range)")
			}
			fl.Window = time.Duration(*in.WindowHours) * time.Hour
		}
		if in.Paused != nil && *in.Paused != fl.Paused() {
			if *in.Paused {
				now := time.Now().UTC()
				fl.PausedAt, fl.PausedReason = &now, "店主手动暂停"
				if ch.Reason != "" {
					fl.PausedReason += "：" + ch.Reason
				}
			} else {
				fl.PausedAt, fl.PausedReason = nil, ""
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"flag": after})
}

func (h *featureHandlers) audit(c *fiber.Ctx) error {
	limit := min(max(c.QueryInt("limit", 50), 1), 200)
	rows, err := h.f.db.FeatureAudit(c.UserContext(), c.Query("flag"), int64(c.QueryInt("before", 0)), limit)
	if err != nil {
		return err
	}
	next := ""
	if len(rows) == limit {
		next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"entries": rows, "next_before": next})
}

func (h *featureHandlers) guard(c *fiber.Ctx) error {
	figs, err := h.f.Guard(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"figures": figs, "guard_z": GuardZ})
}
