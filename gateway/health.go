package gateway

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// healthz says the process is alive. It touches nothing else, so a slow
// database never gets a healthy process restarted.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

type readiness struct {
	Status   string            `json:"status"` // "ready" or "unavailable"
	Reason   string            `json:"reason,omitempty"`
	Checks   map[string]string `json:"checks"`   // name → "ok" or the failure
	Channels map[string]string `json:"channels"` // name → "on" or "off"
	Version  string            `json:"version,omitempty"`
}

// readyz runs every check concurrently with a short deadline and answers 503
// naming what failed, so a load balancer stops sending traffic here.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
	defer cancel()
	r := readiness{Status: "ready", Checks: map[string]string{}, Channels: map[string]string{}, Version: s.opts.Version}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range s.opts.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := "ok"
			if err := check(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			r.Checks[name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	for name, on := range s.opts.Channels {
		r.Channels[name] = map[bool]string{true: "on", false: "off"}[on]
	}
	var failed []string
	for name, res := range r.Checks {
		if res != "ok" {
			failed = append(failed, name+": "+res)
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		r.Status = "unavailable"
		r.Reason = failed[0]
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(r)
}
