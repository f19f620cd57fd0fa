package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/gateway/assistant"
	"github.com/tacklegate/tacklegate/rental"
)

// The assistant in the bridge (BridgeOptions.Assistant).
//
// A customer's message is filed as always, in the transaction that claims
// its callback. There the Desk's Policy is asked, with what the bridge knows
// of the people on duty, whether the assistant answers:
//
//   - no: the message goes to people exactly as without an assistant;
//   - yes, and nobody is on duty: the conversation waits in the queue as
//     always (the first person back with /on gets it, transcript and all),
//     but the customer gets the assistant's answer instead of the "nobody
//     is available" auto-reply;
//   - yes, and people are on duty ("first" mode): the conversation is held
//     back from them until the assistant hands it over.
//
// The Desk is asked after that transaction commits, never inside it (an
// answer may take a language model seconds), in a goroutine, so that the
// same customer writing again cancels the answer still being written
// (ActionSuperseded). Its reply is appended to the conversation by author
// "assistant" and sent through the outbox like any reply, so WeChat's
// 48-hour and five-reply rules and the evidence chain apply. On a hand-off
// (or when the Desk passes, or fails) the conversation is routed to people
// as it would have been.
//
// The turn is at most once: a crash between the commit and the answer
// leaves the message with people (queued or assigned), unanswered by the
// assistant.

// askTurn is an assistant turn decided in a processing transaction, run
// after it commits.
type askTurn struct {
	conv     rental.ConversationID
	msg      rental.ChatMessage // the customer's message, as stored
	presence assistant.Presence
	held     bool   // kept from people until the assistant hands over
	sticky   string // whom assignment prefers (the customer's last staff member)
	cause    string // the processing transaction's cause
}

// assistantTakes decides, inside the processing transaction, whether the
// assistant answers cm (nil: it does not). A turn that is held must not go
// to people now: they are on duty, but the assistant answers first.
func (t *btx) assistantTakes(conv *rental.Conversation, cm *rental.ChatMessage) (*askTurn, error) {
	desk := t.b.opts.Assistant
	if desk == nil || desk.Assistant == nil {
		return nil, nil
	}
	switch {
	case cm.Kind == rental.ChatText && strings.TrimSpace(cm.Text) != "":
	case cm.Kind == rental.ChatImage && len(cm.Media) > 0:
	default:
		return nil, nil // voice, pages, media that could not be had: people
	}
	if f := t.b.opts.AssistantFor; f != nil {
		m, err := t.Member(conv.MemberID)
		if err != nil {
			return nil, err
		}
		if !f(m) {
			return nil, nil // the assistant flag is off for this member
		}
	}
	loads, err := t.StaffLoads()
	if err != nil {
		return nil, err
	}
	var pr assistant.Presence
	if t.b.opts.ShopHours {
		set, err := t.ShopSettings()
		if err != nil {
			return nil, err
		}
		pr.Hours = set.Hours
	}
	for _, l := range loads {
		if !l.OnDuty {
			continue
		}
		pr.StaffOnline++
		if l.UserID == conv.Assignee {
			pr.Assigned = true // a person handles it: the assistant keeps out
		}
	}
	if !desk.Policy.ShouldAnswer(pr, t.now) {
		return nil, nil
	}
	return &askTurn{conv: conv.ID, msg: *cm, presence: pr, held: pr.StaffOnline > 0}, nil
}

// startAsk runs an assistant turn in the background; Run waits for it.
func (b *Bridge) startAsk(ctx context.Context, ask *askTurn) {
	b.asks.Add(1)
	go func() {
		defer b.asks.Done()
		b.runAsk(ctx, ask)
	}()
}

// runAsk asks the Desk and carries out its decision.
func (b *Bridge) runAsk(ctx context.Context, ask *askTurn) {
	desk := b.opts.Assistant
	m := assistant.Message{Conversation: strconv.FormatInt(int64(ask.conv), 10), At: ask.msg.CreatedAt}
	if ask.msg.Kind == rental.ChatImage {
		m.Image = &llm.Image{MIME: ask.msg.MediaType, Data: ask.msg.Media}
	} else {
		m.Text = ask.msg.Text
	}
	act, err := desk.Handle(ctx, m, ask.presence, nil)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // shutting down: the message stays with people (queued or held)
		}
		b.log.Warn("bridge: the assistant failed; the conversation goes to people", "conversation", rental.ConversationCode(ask.conv), "error", err)
		act = assistant.Action{Kind: assistant.ActionPass}
	}
	if act.Kind == assistant.ActionSuperseded {
		return // the customer wrote again: that message's turn answers
	}
	// What the Desk decided is recorded even when a shutdown has begun.
	wctx := context.WithoutCancel(ctx)
	err = b.inTx(wctx, "ai"+ask.cause, func(t *btx) error {
		conv, err := t.Conversation(ask.conv)
		if err != nil {
			return err
		}
		if !conv.Live() {
			return nil // closed meanwhile by a person
		}
		if act.Reply != "" && (act.Kind == assistant.ActionAnswer || act.Kind == assistant.ActionHandoff) {
			reply := rental.ChatMessage{Direction: rental.ChatOut, Kind: rental.ChatText, Author: rental.AssistantAuthor,
				Text: act.Reply, CreatedAt: t.now, Upstream: "assistant:" + ask.cause,
				ToCustomer: rental.Delivery{Status: rental.DeliveryStored}}
			if err := t.Append(conv, &reply); err != nil {
				if errors.Is(err, store.ErrDuplicateMessage) {
					return nil // this turn was recorded before
				}
				return err
			}
			if err := t.flush(store.SideCustomer, conv.ID, reply.ID); err != nil {
				return err
			}
		}
		if act.Kind == assistant.ActionHandoff || act.Kind == assistant.ActionPass {
			// To people, as without an assistant; the hand-off message
			// already said what happens next, a pass did not.
			if err := t.route(conv, ask.sticky, &ask.msg, act.Kind == assistant.ActionPass); err != nil {
				return err
			}
		}
		return t.SaveConversation(conv)
	})
	if err != nil {
		b.log.Error("bridge: the assistant's decision could not be recorded", "conversation", rental.ConversationCode(ask.conv), "action", act.Kind, "error", err)
	}
}
