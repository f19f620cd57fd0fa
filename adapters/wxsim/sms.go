package wxsim

import (
	"net/http"
	"time"
)

// SMS is a text message a customer's phone received. The simulator plays
// the customers' phones too, so that the demo can show login codes on the
// same page as the chats.
type SMS struct {
	Phone string    `json:"phone"`
	Text  string    `json:"text"`
	At    time.Time `json:"at"`
}

const smsKept = 50

// ReceiveSMS records a text message delivered to a phone.
func (s *Simulator) ReceiveSMS(phone, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sms = append(s.sms, SMS{Phone: phone, Text: text, At: s.clock.Now()})
	if len(s.sms) > smsKept {
		s.sms = s.sms[len(s.sms)-smsKept:]
	}
}

// SMSInbox returns the text messages received, oldest first.
func (s *Simulator) SMSInbox() []SMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMS{}, s.sms...)
}

func (s *Simulator) ctlSMS(w http.ResponseWriter, r *http.Request) error {
	return ok(w, s.SMSInbox())
}
