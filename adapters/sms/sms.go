// Package sms sends one-time login codes. The log sender is for development
// and the demo: it writes the code to the console (and keeps the last codes
// so the demo can show them); a real provider implements the same Sender.
package sms

import (
	"context"
	"log/slog"
	"sync"

	"github.com/tacklegate/tacklegate/rental"
)

// Sender delivers a text message to a phone (E.164 digits, e.g. 8613800000000).
type Sender interface {
	Send(ctx context.Context, phone, text string) error
}

// LogSender "sends" by logging: the development and demo sender.
type LogSender struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]string // phone → last text, for the demo page and tests
}

var _ Sender = (*LogSender)(nil)

// NewLogSender returns a sender that logs each message at WARN level, so it
// is seen, and says it is not a real provider.
func NewLogSender(log *slog.Logger) *LogSender {
	return &LogSender{log: log.With("component", "sms"), last: map[string]string{}}
}

// Send logs the message. The phone is masked; the code is shown because
// showing it is the point of this sender.
func (s *LogSender) Send(_ context.Context, phone, text string) error {
	s.mu.Lock()
	s.last[phone] = text
	s.mu.Unlock()
	s.log.Warn("SMS (development sender: not delivered)", "phone", rental.MaskPhone(phone), "text", text)
	return nil
}

// Last returns the last message sent to phone.
func (s *LogSender) Last(phone string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.last[phone]
	return t, ok
}

// Both sends through every sender in turn (the demo logs the code and shows
// it on the simulator's page); the first error is returned.
func Both(senders ...Sender) Sender { return multi(senders) }

type multi []Sender

func (m multi) Send(ctx context.Context, phone, text string) error {
	for _, s := range m {
		if err := s.Send(ctx, phone, text); err != nil {
			return err
		}
	}
	return nil
}

// Func adapts a function to a Sender.
type Func func(ctx context.Context, phone, text string) error

// Send calls f.
func (f Func) Send(ctx context.Context, phone, text string) error { return f(ctx, phone, text) }
