package assistant

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tacklegate/tacklegate/adapters/llm"
)

// Outcome is whether an answer resolved the customer's question.
type Outcome string

const (
	OutcomePending    Outcome = "pending"    // no signal yet
	OutcomeResolved   Outcome = "resolved"   // the customer said it helped
	OutcomeUnresolved Outcome = "unresolved" // the customer said it did not, a person stepped in, or it was handed over
)

// OutcomeBy says who decided an outcome.
type OutcomeBy string

const (
	ByCustomer OutcomeBy = "customer" // feedback: a rating, 谢谢, 没用
	ByPerson   OutcomeBy = "person"   // a person took the conversation after the answer
	ByHandoff  OutcomeBy = "handoff"  // the assistant itself handed over
)

// Record is one turn of the assistant, kept so that the owner sees the share
// of questions the assistant could not resolve, and which ones.
type Record struct {
	ID           int64
	Conversation string
	Question     string
	Answer       string // what was sent ("" for a handoff without answer)
	Kind         AnswerKind
	Sources      []string // entry or item ids, best first
	Confidence   float64
	Phrased      bool
	ModelError   string
	Handoff      HandoffReason
	Outcome      Outcome
	OutcomeBy    OutcomeBy
	CreatedAt    time.Time
	DecidedAt    time.Time // when Outcome stopped being pending
}

// RecordStore keeps the records; the store implements it (the gateway
// wires it). SetOutcome changes only a pending record, so the first signal
// wins and a late one cannot overwrite it.
type RecordStore interface {
	AddRecord(ctx context.Context, r *Record) error // sets r.ID
	SetOutcome(ctx context.Context, id int64, o Outcome, by OutcomeBy, at time.Time) error
}

// ActionKind is what the bridge does after a customer's message.
type ActionKind string

const (
	// ActionPass: the assistant keeps out; route the message to people as
	// if there were no assistant.
	ActionPass ActionKind = "pass"
	// ActionAnswer: send Reply to the customer. The conversation stays with
	// the assistant.
	ActionAnswer ActionKind = "answer"
	// ActionHandoff: send Reply (the honest wait message), then hand the
	// conversation to a person: assign it to someone online, or queue it.
	ActionHandoff ActionKind = "handoff"
	// ActionSuperseded: the customer wrote again (or a person joined)
	// before this answer was ready; send nothing.
	ActionSuperseded ActionKind = "superseded"
)

// Action is the Desk's decision for one message.
type Action struct {
	Kind     ActionKind
	Reply    string
	Reason   HandoffReason // for ActionHandoff
	Answer   *Answer       // for ActionAnswer, and for a handoff the assistant tried to answer
	RecordID int64         // 0 when nothing was recorded
}

// Message is a customer's message as the bridge hands it to the Desk.
type Message struct {
	Conversation string // the bridge's conversation id
	Text         string
	Image        *llm.Image
	At           time.Time // when it arrived; zero means now
}

// Desk is the hook the message bridge calls for each customer message: it
// applies the Policy, asks the Assistant, keeps records, and cancels an
// answer still being written when the same customer writes again. It keeps
// each conversation's unhelpful streak in memory; with several instances,
// route a conversation's messages to one instance (the bridge's assignment
// already does) or accept that a streak restarts on another instance.
type Desk struct {
	Assistant *Assistant
	Policy    Policy
	Records   RecordStore // nil: nothing is recorded
	Logger    *slog.Logger
	Now       func() time.Time

	mu    sync.Mutex
	convs map[string]*convState
}

type convState struct {
	cancel   context.CancelFunc // the answer in progress, if any
	turn     uint64             // bumps on every message; an answer for an old turn is superseded
	pending  int64              // record of the last answer, while its outcome is open
	streak   int                // unhelpful answers in a row
	lastSeen time.Time
}

func (d *Desk) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Desk) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// state returns the conversation's state, creating it; the caller holds mu.
func (d *Desk) state(conv string, now time.Time) *convState {
	if d.convs == nil {
		d.convs = map[string]*convState{}
	}
	st := d.convs[conv]
	if st == nil {
		st = &convState{}
		d.convs[conv] = st
		if len(d.convs)%1024 == 0 {
			d.prune(now)
		}
	}
	st.lastSeen = now
	return st
}

// prune forgets conversations idle for a day; the caller holds mu.
func (d *Desk) prune(now time.Time) {
	for k, st := range d.convs {
		if now.Sub(st.lastSeen) > 24*time.Hour && st.cancel == nil {
			delete(d.convs, k)
		}
	}
}

// Handle decides what to do with a customer's message. onDelta, when not
// nil, receives the language model's text as it is written, for channels
// that can show it live (the mini-program's chat over /ws); WeChat
// customer-service messages cannot be edited, so the bridge sends only
// Action.Reply there. Handle blocks until the answer is ready; a message of
// the same conversation arriving meanwhile makes this one return
// ActionSuperseded.
func (d *Desk) Handle(ctx context.Context, m Message, pr Presence, onDelta func(string)) (Action, error) {
	now := m.At
	if now.IsZero() {
		now = d.now()
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()

	d.mu.Lock()
	st := d.state(m.Conversation, now)
	if st.cancel != nil {
		st.cancel() // the customer wrote again: stop the answer being written
	}
	st.turn++
	turn := st.turn
	st.cancel = cancel
	prev := st.pending
	fb := ReadFeedback(m.Text)
	if prev != 0 && fb != FeedbackNone {
		st.pending = 0
	}
	switch fb {
	case FeedbackUnhelpful:
		st.streak++
	case FeedbackNone:
		if prev != 0 {
			st.streak = 0 // moved on without complaint
		}
	}
	streak := st.streak
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if st.turn == turn {
			st.cancel = nil
		}
		d.mu.Unlock()
	}()

	if prev != 0 {
		switch fb {
		case FeedbackHelpful:
			d.setOutcome(ctx, prev, OutcomeResolved, ByCustomer, now)
		case FeedbackUnhelpful:
			d.setOutcome(ctx, prev, OutcomeUnresolved, ByCustomer, now)
		}
	}
	if !d.Policy.ShouldAnswer(pr, now) {
		return Action{Kind: ActionPass}, nil
	}

	handoff := func(reason HandoffReason, ans *Answer) (Action, error) {
		a := Action{Kind: ActionHandoff, Reason: reason, Answer: ans, Reply: d.Policy.HandoffMessage(reason, pr, now)}
		r := &Record{Conversation: m.Conversation, Question: m.Text, Handoff: reason, Kind: AnswerNone,
			Outcome: OutcomeUnresolved, OutcomeBy: ByHandoff, CreatedAt: now, DecidedAt: now}
		if ans != nil {
			fillRecord(r, *ans)
			r.Answer = ""
		}
		a.RecordID = d.addRecord(ctx, r)
		d.mu.Lock()
		open := st.pending
		st.streak, st.pending = 0, 0
		d.mu.Unlock()
		// The answer before, if nobody said whether it helped, did not:
		// a person has to step in.
		d.setOutcome(ctx, open, OutcomeUnresolved, ByHandoff, now)
		return a, nil
	}
	if reason := d.Policy.Trigger(m.Text); reason != "" {
		return handoff(reason, nil)
	}
	if fb == FeedbackUnhelpful && d.Policy.HandsOver(streak) {
		return handoff(ReasonUnhelpful, nil)
	}
	if fb == FeedbackHelpful && prev != 0 {
		return Action{Kind: ActionAnswer, Reply: "不客气～还有问题随时问我。"}, nil
	}
	if fb == FeedbackUnhelpful && m.Image == nil && len([]rune(m.Text)) <= 12 {
		// A bare "没用" gives nothing to search; ask for the question again.
		return Action{Kind: ActionAnswer, Reply: "抱歉没说清楚。能换个说法再问一次吗？也可以回复“人工”找店员。"}, nil
	}

	ans, err := d.Assistant.Answer(actx, Question{Text: m.Text, Image: m.Image, At: now}, onDelta)
	superseded := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return st.turn != turn
	}
	if superseded() || (err != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil) {
		return Action{Kind: ActionSuperseded}, nil
	}
	if err != nil {
		// The catalog or settings failed: a person answers rather than nobody.
		d.logger().Warn("assistant failed; handing over", "conversation", m.Conversation, "error", err)
		return handoff(ReasonLowConfidence, nil)
	}
	if ans.Kind == AnswerNone {
		return handoff(ans.Handoff, &ans)
	}
	r := &Record{Conversation: m.Conversation, Question: m.Text, Outcome: OutcomePending, CreatedAt: now}
	fillRecord(r, ans)
	id := d.addRecord(ctx, r)
	d.mu.Lock()
	if st.turn == turn {
		st.pending = id
	}
	d.mu.Unlock()
	return Action{Kind: ActionAnswer, Reply: ans.Text, Answer: &ans, RecordID: id}, nil
}

func fillRecord(r *Record, ans Answer) {
	r.Answer, r.Kind, r.Confidence, r.Phrased, r.ModelError = ans.Text, ans.Kind, ans.Confidence, ans.Phrased, ans.ModelError
	for _, s := range ans.Sources {
		r.Sources = append(r.Sources, s.ID)
	}
}

func (d *Desk) addRecord(ctx context.Context, r *Record) int64 {
	if d.Records == nil {
		return 0
	}
	if err := d.Records.AddRecord(context.WithoutCancel(ctx), r); err != nil {
		d.logger().Warn("cannot record the assistant's answer", "conversation", r.Conversation, "error", err)
		return 0
	}
	return r.ID
}

func (d *Desk) setOutcome(ctx context.Context, id int64, o Outcome, by OutcomeBy, at time.Time) {
	if d.Records == nil || id == 0 {
		return
	}
	if err := d.Records.SetOutcome(context.WithoutCancel(ctx), id, o, by, at); err != nil {
		d.logger().Warn("cannot record an answer's outcome", "record", id, "error", err)
	}
}

// Feedback records the customer's rating of an answer (the 有用/没用
// buttons under it). An unhelpful rating counts toward the streak.
func (d *Desk) Feedback(ctx context.Context, conversation string, record int64, helpful bool) {
	now := d.now()
	d.mu.Lock()
	st := d.state(conversation, now)
	if st.pending == record {
		st.pending = 0
	}
	if helpful {
		st.streak = 0
	} else {
		st.streak++
	}
	d.mu.Unlock()
	o := OutcomeResolved
	if !helpful {
		o = OutcomeUnresolved
	}
	d.setOutcome(ctx, record, o, ByCustomer, now)
}

// PersonJoined tells the Desk a person took the conversation: an answer
// still being written is dropped, and the last answer, if nobody said
// whether it helped, counts as unresolved — a person had to step in.
func (d *Desk) PersonJoined(ctx context.Context, conversation string) {
	now := d.now()
	d.mu.Lock()
	st := d.state(conversation, now)
	if st.cancel != nil {
		st.cancel()
		st.cancel = nil
	}
	st.turn++
	id := st.pending
	st.pending, st.streak = 0, 0
	d.mu.Unlock()
	d.setOutcome(ctx, id, OutcomeUnresolved, ByPerson, now)
}

// Forget drops a closed conversation's state.
func (d *Desk) Forget(conversation string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.convs[conversation]; st != nil && st.cancel != nil {
		st.cancel()
	}
	delete(d.convs, conversation)
}
