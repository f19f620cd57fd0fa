package media

import (
	"context"
	"sync"
)

// sendQueue is how many signals may wait for a slow transport. A client
// that falls this far behind is treated as gone (its participant is kept
// for ReconnectGrace): blocking would stall the room, dropping signals
// silently would break negotiation.
const sendQueue = 256

// Session is one transport's hold on a participant: the gateway gets one
// from Join for each WebSocket. Signals for the client go to the send
// function given to Join, one at a time and in order, from a goroutine of
// the Session's own, so a slow socket delays nobody else.
type Session struct {
	p    *participant
	send func(Signal) error
	out  chan Signal
	done chan struct{} // closed by end: no more signals in or out
	// finished is closed when the writer has stopped, after delivering
	// a final signal if there was one.
	finished chan struct{}

	endOnce sync.Once
	mu      sync.Mutex
	drain   bool // deliver what is queued before stopping
}

func newSession(p *participant, send func(Signal) error) *Session {
	return &Session{p: p, send: send, out: make(chan Signal, sendQueue), done: make(chan struct{}),
		finished: make(chan struct{})}
}

// ParticipantID is the participant this session speaks for.
func (s *Session) ParticipantID() string { return s.p.info.ID }

// Room is the id of the session's room.
func (s *Session) Room() string { return s.p.room.id }

// Done is closed when the session is over (the participant left or was
// removed, or a newer Join took over) and its last signal has been sent.
// The gateway should then close the socket.
func (s *Session) Done() <-chan struct{} { return s.finished }

// Handle applies one signal from the client. Signals are applied in the
// order Handle is called; it may be called from any goroutine. A returned
// error has been reported to the client as an "error" signal already; the
// gateway only logs it. ErrSessionClosed (test with errors.Is) means the
// session is over.
func (s *Session) Handle(ctx context.Context, sig Signal) error {
	err := s.handle(ctx, sig)
	if err != nil && ErrorCode(err) != CodeSessionClosed && ctx.Err() == nil {
		s.enqueue(errorSignal(err))
	}
	return err
}

func (s *Session) handle(ctx context.Context, sig Signal) error {
	select {
	case <-s.done:
		return ErrSessionClosed
	default:
	}
	p := s.p
	switch sig.Type {
	case TypeOffer, TypeAnswer:
		if sig.SDP == nil || sig.SDP.SDP == "" || sig.SDP.Type.String() != sig.Type {
			return errorf(sig.Type, CodeInvalid, "%s needs sdp of type %s", sig.Type, sig.Type)
		}
		desc := *sig.SDP
		return p.do(ctx, func() error {
			if sig.Type == TypeOffer {
				return p.handleOffer(desc)
			}
			return p.handleAnswer(desc)
		})
	case TypeCandidate:
		if sig.Candidate == nil || sig.Candidate.Candidate == "" {
			return nil // end of candidates: nothing to do
		}
		c := *sig.Candidate
		return p.do(ctx, func() error { p.handleCandidate(c); return nil })
	case TypeRestartICE:
		return p.do(ctx, func() error {
			p.iceRestart = true
			p.needOffer = true
			return nil
		})
	case TypeMute:
		return p.setMute(sig.Kind, sig.Muted)
	case TypeLeave:
		p.close(ReasonLeft, nil)
		return nil
	default:
		return errorf("signal", CodeInvalid, "unknown signal type %q", sig.Type)
	}
}

// Close tells media the transport is gone. The participant, its
// PeerConnection and its tracks stay for ReconnectGrace; a Join with the
// same participant id within it resumes them. Close is idempotent and does
// not call send.
func (s *Session) Close() {
	s.p.detach(s)
	s.end(false)
}

// enqueue queues sig for the client without blocking.
func (s *Session) enqueue(sig Signal) {
	select {
	case <-s.done:
		return
	default:
	}
	select {
	case s.out <- sig:
	default:
		s.p.log.Warn("client not reading signals; dropping its transport")
		// Not inline: enqueue runs with the participant's lock held.
		s.p.m.spawn(s.Close)
	}
}

// end stops the session. With drain, what is already queued (a final
// room-closed, say) is still delivered.
func (s *Session) end(drain bool) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.drain = drain
		s.mu.Unlock()
		close(s.done)
	})
}

// run delivers queued signals until the session ends or send fails.
func (s *Session) run() {
	defer close(s.finished)
	for {
		select {
		case sig := <-s.out:
			if err := s.send(sig); err != nil {
				s.p.log.Info("signal send failed; transport gone", "err", err)
				s.Close()
				return
			}
		case <-s.done:
			s.mu.Lock()
			drain := s.drain
			s.mu.Unlock()
			for drain {
				select {
				case sig := <-s.out:
					if s.send(sig) != nil {
						return
					}
				default:
					return
				}
			}
			return
		}
	}
}
