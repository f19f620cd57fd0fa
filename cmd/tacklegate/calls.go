package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/gateway"
	"github.com/tacklegate/tacklegate/rental"
)

// newCalls builds the call flow (gateway/calls.go). Staff are rung in WeCom
// when WeCom is on; against the real WeCom the textcard's link goes through
// WeCom's OAuth, so the room page opens signed in. Against the simulator
// (demo), which has no OAuth page, each staff member's link carries a room
// token of their own.
func (a *app) newCalls(cfg config.Config, logger *slog.Logger) (*gateway.Calls, error) {
	o := gateway.CallsOptions{DB: a.db, PublicURL: cfg.PublicURL, RingTimeout: cfg.CallRingTimeout, Logger: logger}
	if a.wecom != nil {
		o.WeCom = a.wecom
		if strings.Contains(cfg.WeCom.APIBase, "qyapi.weixin.qq.com") {
			o.StaffLink = gateway.WeComOAuthLink(cfg.WeCom.OAuthBase, cfg.WeCom.CorpID, cfg.WeCom.AgentID)
		} else {
			o.StaffTokenLinks = true
		}
	}
	// The video_help flag decides who may start a call; read when a call
	// starts, so the flags may be set up after the call flow.
	o.Allowed = func(m rental.Member, _ string) bool {
		return a.features == nil || a.features.Enabled(context.Background(), int64(m.ID), string(m.Tier), gateway.FeatureVideoHelp)
	}
	return gateway.NewCalls(o)
}

// callsVideo is the bridge's /video hook, when the call flow runs.
func (a *app) callsVideo() func(context.Context, rental.Conversation, string) (string, string, error) {
	if a.calls == nil {
		return nil
	}
	return a.calls.Video
}
