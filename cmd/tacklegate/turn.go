package main

import (
	"log/slog"

	"github.com/tacklegate/tacklegate/config"
	"github.com/tacklegate/tacklegate/media"
)

// startTURN starts the embedded TURN server when TACKLEGATE_TURN_ADDR is
// set, and returns the ICE servers room answers hand to clients (its URLs
// and TACKLEGATE_ICE_SERVERS; nil when there are none) and a stop
// function to run at shutdown.
func startTURN(cfg config.Config, logger *slog.Logger) (*media.ICEServers, func(), error) {
	urls := append([]string(nil), cfg.ICEServers...)
	stop := func() {}
	if cfg.TURN.Enabled() {
		ts, err := media.StartTURN(media.TURNConfig{
			Addr: cfg.TURN.Addr, PublicIP: cfg.TURN.RelayIP(), Realm: cfg.TURN.Realm,
			Secret: []byte(cfg.TURN.Secret), Logger: logger,
		})
		if err != nil {
			return nil, nil, err
		}
		stop = func() {
			if err := ts.Close(); err != nil {
				logger.Warn("TURN server did not close cleanly", "error", err)
			}
		}
		urls = append(ts.URLs(), urls...)
	}
	if len(urls) == 0 {
		return nil, stop, nil
	}
	return &media.ICEServers{URLs: urls, Secret: []byte(cfg.TURN.Secret)}, stop, nil
}
