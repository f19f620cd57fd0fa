package paysim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// retrySchedule is WeChat Pay's documented wait after each failed
// notification attempt: 15 retries over about 24 hours, then it gives up.
func retrySchedule() []time.Duration {
	return []time.Duration{
		15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
		10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute,
		30 * time.Minute, 60 * time.Minute, 3 * time.Hour, 3 * time.Hour,
		3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
	}
}

// NotifyAttempt is one notification delivery attempt, for inspection.
type NotifyAttempt struct {
	EventID     string    `json:"event_id"` // the envelope id; the same on every retry
	EventType   string    `json:"event_type"`
	OutTradeNo  string    `json:"out_trade_no"`
	OutRefundNo string    `json:"out_refund_no,omitempty"`
	URL         string    `json:"url"`
	Attempt     int       `json:"attempt"` // 1 for the first delivery of this event
	At          time.Time `json:"at"`      // simulator clock
	Status      int       `json:"status"`  // HTTP status, 0 when there was none
	Error       string    `json:"error,omitempty"`
	Delivered   bool      `json:"delivered"` // 200 or 204 in time
	Duplicate   bool      `json:"duplicate,omitempty"`
	Dropped     bool      `json:"dropped,omitempty"` // lost to an injected fault
	// Probe marks a request signed with a WECHATPAY/SIGNTEST/ signature; it
	// is sent before a real delivery and does not count as one. A receiver
	// that answers it with 2xx skips verification (ProbeAccepted).
	Probe         bool `json:"probe,omitempty"`
	ProbeAccepted bool `json:"probe_accepted,omitempty"`
}

// notifyJob is one event and its delivery state. Guarded by Server.mu.
type notifyJob struct {
	id, eventType, url, outTradeNo, outRefundNo string
	body                                        []byte // fixed envelope: retries resend the same id and ciphertext
	sends                                       int    // attempts made
	failures                                    int    // consecutive failures since the last success
	next                                        time.Time
	inFlight, done, delivered                   bool
	duplicate                                   bool // the next send is a duplicate of a delivered one
	dupUsed                                     bool
}

// enqueueLocked builds the encrypted envelope (§3.7) and queues its delivery
// for now.
func (s *Server) enqueueLocked(eventType, summary, originalType string, plaintext []byte, url, outTradeNo, outRefundNo string, now time.Time) {
	nonce := s.randString(12, alnum)
	ciphertext, err := seal([]byte(s.cfg.APIv3Key), []byte(nonce), []byte(originalType), plaintext)
	if err != nil { // only with a key New would have refused
		s.log.Error("encrypt notification", "err", err)
		return
	}
	id := s.uuid()
	body, _ := json.Marshal(map[string]any{
		"id":            id,
		"create_time":   formatTime(now),
		"resource_type": "encrypt-resource",
		"event_type":    eventType,
		"summary":       summary,
		"resource": map[string]string{
			"original_type":   originalType,
			"algorithm":       "AEAD_AES_256_GCM",
			"ciphertext":      ciphertext,
			"associated_data": originalType,
			"nonce":           nonce,
		},
	})
	j := &notifyJob{id: id, eventType: eventType, url: url, outTradeNo: outTradeNo, outRefundNo: outRefundNo, body: body, next: now}
	s.events[id] = j
	s.jobs = append(s.jobs, j)
	s.kick()
}

// seal is AEAD_AES_256_GCM: base64(ciphertext || 16-byte tag).
func seal(key, nonce, aad, plaintext []byte) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nil, nonce, plaintext, aad)), nil
}

// kick wakes the worker without waiting for the next poll.
func (s *Server) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the background worker: it completes due refunds and starts due
// notification deliveries, on every poll and every kick.
func (s *Server) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		s.step()
	}
}

func (s *Server) step() {
	s.mu.Lock()
	s.advanceLocked()
	now := s.now()
	var due []*notifyJob
	live := s.jobs[:0]
	for _, j := range s.jobs {
		if j.done {
			continue
		}
		live = append(live, j)
		if !j.inFlight && !now.Before(j.next) {
			j.inFlight = true
			due = append(due, j)
		}
	}
	clear(s.jobs[len(live):])
	s.jobs = live
	s.mu.Unlock()
	for _, j := range due {
		s.wg.Add(1) // the worker itself is counted, so Close cannot miss this
		go s.deliver(j)
	}
}

// deliver makes one delivery attempt (preceded by a probe request when the
// dice say so) and schedules what follows.
func (s *Server) deliver(j *notifyJob) {
	defer s.wg.Done()
	s.mu.Lock()
	j.sends++
	att := NotifyAttempt{EventID: j.id, EventType: j.eventType, OutTradeNo: j.outTradeNo, OutRefundNo: j.outRefundNo,
		URL: j.url, Attempt: j.sends, Duplicate: j.duplicate}
	s.mu.Unlock()

	f, faulty := s.fault(EndpointNotify)
	if faulty && f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-s.ctx.Done():
		}
	}
	if s.chance(s.cfg.SignProbeRate) {
		status, err := s.post(j, true)
		probe := NotifyAttempt{EventID: j.id, EventType: j.eventType, OutTradeNo: j.outTradeNo, OutRefundNo: j.outRefundNo,
			URL: j.url, Attempt: att.Attempt, At: s.now(), Status: status, Probe: true, ProbeAccepted: err == nil && status/100 == 2}
		if err != nil {
			probe.Error = err.Error()
		}
		if probe.ProbeAccepted {
			s.log.Warn("notify receiver accepted a signature probe: it does not verify signatures", "url", j.url)
		}
		s.record(probe)
	}
	if faulty && f.Drop {
		att.Dropped, att.Error = true, "dropped by injected fault"
	} else {
		status, err := s.post(j, false)
		att.Status = status
		switch {
		case err != nil:
			att.Error = err.Error()
		case status == http.StatusOK || status == http.StatusNoContent:
			att.Delivered = true
		default:
			att.Error = fmt.Sprintf("receiver answered HTTP %d (success is 200 or 204)", status)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	att.At = now
	s.attempts = append(s.attempts, att)
	j.inFlight, j.duplicate = false, false
	if att.Delivered {
		j.delivered, j.failures = true, 0
		if !j.dupUsed && s.chance(s.cfg.DuplicateNotifyRate) {
			// WeChat Pay may deliver an acknowledged notification again.
			j.dupUsed, j.duplicate = true, true
			j.next = now.Add(s.scaled(retrySchedule()[0]))
			return
		}
		j.done = true
		return
	}
	s.log.Info("notification not delivered", "event", j.eventType, "out_trade_no", j.outTradeNo, "attempt", j.sends, "err", att.Error)
	sched := retrySchedule()
	if j.failures >= len(sched) {
		j.done = true
		s.log.Warn("notification abandoned after the last retry", "event", j.eventType, "out_trade_no", j.outTradeNo)
		return
	}
	j.next = now.Add(s.scaled(sched[j.failures]))
	j.failures++
}

// record appends an attempt under the lock.
func (s *Server) record(a NotifyAttempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, a)
}

// post sends the envelope, freshly signed (a retry hours later must carry a
// current timestamp), and returns the receiver's status.
func (s *Server) post(j *notifyJob, probe bool) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.NotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, err
	}
	for k, v := range s.signatureHeaders(j.body, probe) {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mozilla/4.0") // what WeChat Pay's notifier sends
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Drain (bounded) so the connection can be reused; the content is not needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
