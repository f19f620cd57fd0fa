package assistant

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/llm"
	"github.com/tacklegate/tacklegate/adapters/llm/llmtest"
	"github.com/tacklegate/tacklegate/rental"
)

// memRecords is a RecordStore in memory with the store's rule: only a
// pending record changes outcome.
type memRecords struct {
	mu   sync.Mutex
	rows []Record
}

func (m *memRecords) AddRecord(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.ID = int64(len(m.rows) + 1)
	m.rows = append(m.rows, *r)
	return nil
}

func (m *memRecords) SetOutcome(_ context.Context, id int64, o Outcome, by OutcomeBy, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := &m.rows[id-1]; r.Outcome == OutcomePending {
		r.Outcome, r.OutcomeBy, r.DecidedAt = o, by, at
	}
	return nil
}

func (m *memRecords) get(id int64) Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rows[id-1]
}

func (m *memRecords) count() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.rows) }

func newDesk(t *testing.T, a *Assistant) (*Desk, *memRecords) {
	t.Helper()
	if a == nil {
		a, _ = newTestAssistant(t, nil)
	}
	recs := &memRecords{}
	return &Desk{Assistant: a, Records: recs, Now: func() time.Time { return testNow }}, recs
}

// nobody is the presence at night: shop closed, nobody online.
var nobody = Presence{Hours: shopHours}

func handle(t *testing.T, d *Desk, conv, text string, pr Presence) Action {
	t.Helper()
	act, err := d.Handle(context.Background(), Message{Conversation: conv, Text: text, At: testNow}, pr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func TestDeskAnswersAndRecordsFeedback(t *testing.T) {
	d, recs := newDesk(t, nil)
	act := handle(t, d, "c1", "押金咋退", nobody)
	if act.Kind != ActionAnswer || !strings.Contains(act.Reply, "原路退回") || act.RecordID == 0 {
		t.Fatalf("action = %+v", act)
	}
	r := recs.get(act.RecordID)
	if r.Outcome != OutcomePending || r.Kind != AnswerKnowledge || r.Sources[0] != "deposit-refund" || r.Question != "押金咋退" || r.Conversation != "c1" {
		t.Fatalf("record = %+v", r)
	}
	thanks := handle(t, d, "c1", "好的谢谢", nobody)
	if thanks.Kind != ActionAnswer || !strings.Contains(thanks.Reply, "不客气") {
		t.Fatalf("thanks → %+v", thanks)
	}
	if r := recs.get(act.RecordID); r.Outcome != OutcomeResolved || r.OutcomeBy != ByCustomer {
		t.Fatalf("after thanks: %+v", r)
	}
	// The rating buttons record the same way.
	act = handle(t, d, "c1", "逾期费怎么算", nobody)
	d.Feedback(context.Background(), "c1", act.RecordID, false)
	if r := recs.get(act.RecordID); r.Outcome != OutcomeUnresolved || r.OutcomeBy != ByCustomer {
		t.Fatalf("after a thumbs-down: %+v", r)
	}
}

func TestDeskKeepsOutWhenStaffAnswer(t *testing.T) {
	d, recs := newDesk(t, nil)
	open := Presence{StaffOnline: 2, Hours: shopHours}
	if act := handle(t, d, "c1", "押金咋退", open); act.Kind != ActionPass {
		t.Fatalf("staff online and open: %+v", act)
	}
	if act := handle(t, d, "c1", "押金咋退", Presence{Assigned: true}); act.Kind != ActionPass {
		t.Fatalf("a person has it: %+v", act)
	}
	d.Policy.Mode = ModeFirst
	if act := handle(t, d, "c2", "押金咋退", open); act.Kind != ActionAnswer {
		t.Fatalf("answer-first mode: %+v", act)
	}
	if recs.count() != 1 {
		t.Fatalf("%d records, want 1", recs.count())
	}
}

func TestDeskHandsOver(t *testing.T) {
	d, recs := newDesk(t, nil)
	night := time.Date(2026, 6, 3, 23, 0, 0, 0, rental.Shanghai())
	d.Now = func() time.Time { return night }
	for _, tc := range []struct {
		text   string
		reason HandoffReason
		reply  string
	}{
		{"转人工", ReasonAsked, "这就为您转人工"},
		{"凭什么扣我押金 我要投诉", ReasonDispute, "需要店员来处理"},
		{"帮我写一篇五百字的作文", ReasonLowConfidence, "答不上来"},
	} {
		act, err := d.Handle(context.Background(), Message{Conversation: "c-" + tc.text, Text: tc.text}, nobody, nil)
		if err != nil {
			t.Fatal(err)
		}
		if act.Kind != ActionHandoff || act.Reason != tc.reason || !strings.Contains(act.Reply, tc.reply) || !strings.Contains(act.Reply, "明天 06:00") {
			t.Errorf("%q → %+v", tc.text, act)
			continue
		}
		r := recs.get(act.RecordID)
		if r.Handoff != tc.reason || r.Outcome != OutcomeUnresolved || r.OutcomeBy != ByHandoff || r.Answer != "" {
			t.Errorf("%q: record %+v", tc.text, r)
		}
	}
	// Someone online during opening hours, in answer-first mode: the reply
	// says where the customer stands in the queue.
	d.Policy.Mode = ModeFirst
	d.Now = func() time.Time { return testNow }
	act := handle(t, d, "q", "转人工", Presence{StaffOnline: 1, Queue: 2, TypicalWait: 3 * time.Minute, Hours: shopHours})
	if !strings.Contains(act.Reply, "前面还有 2 位") || !strings.Contains(act.Reply, "约 3 分钟") {
		t.Errorf("queue message: %q", act.Reply)
	}
}

func TestDeskTwoUnhelpfulAnswersHandOver(t *testing.T) {
	d, recs := newDesk(t, nil)
	first := handle(t, d, "c", "押金咋退", nobody)
	if first.Kind != ActionAnswer {
		t.Fatalf("first: %+v", first)
	}
	again := handle(t, d, "c", "没用", nobody)
	if again.Kind != ActionAnswer || !strings.Contains(again.Reply, "换个说法") {
		t.Fatalf("one unhelpful turn: %+v", again)
	}
	if r := recs.get(first.RecordID); r.Outcome != OutcomeUnresolved || r.OutcomeBy != ByCustomer {
		t.Fatalf("first record: %+v", r)
	}
	second := handle(t, d, "c", "押金什么时候能退给我", nobody)
	if second.Kind != ActionAnswer {
		t.Fatalf("rephrased: %+v", second)
	}
	last := handle(t, d, "c", "还是不对，答非所问", nobody)
	if last.Kind != ActionHandoff || last.Reason != ReasonUnhelpful {
		t.Fatalf("two unhelpful turns: %+v", last)
	}
	// A new question after a handed-over streak starts from zero.
	if act := handle(t, d, "c", "几点开门", nobody); act.Kind != ActionAnswer {
		t.Fatalf("after handoff: %+v", act)
	}
}

func TestDeskPersonSteppingInCountsUnresolved(t *testing.T) {
	d, recs := newDesk(t, nil)
	act := handle(t, d, "c", "押金多久到账", nobody)
	d.PersonJoined(context.Background(), "c")
	if r := recs.get(act.RecordID); r.Outcome != OutcomeUnresolved || r.OutcomeBy != ByPerson {
		t.Fatalf("record = %+v", r)
	}
	// A late "thank you" does not overwrite the outcome.
	handle(t, d, "c", "谢谢", nobody)
	if r := recs.get(act.RecordID); r.Outcome != OutcomeUnresolved {
		t.Fatalf("outcome overwritten: %+v", r)
	}
}

func TestDeskCancelsAnswerWhenCustomerWritesAgain(t *testing.T) {
	srv := llmtest.New(t)
	srv.SetReply(func(r llmtest.Request) string {
		if strings.Contains(r.LastUser().Text, "押金") {
			return strings.Repeat("押金验收后原路退回。", 20)
		}
		return "营业时间是每天早上六点到晚上八点。"
	})
	srv.SetDelays(0, 30*time.Millisecond)
	c, err := llm.New(llm.Config{BaseURL: srv.URL, APIKey: "test-key", Model: "chat-model", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newTestAssistant(t, func(o *Options) { o.Model = c })
	d, recs := newDesk(t, a)

	started := make(chan struct{})
	var once sync.Once
	firstDone := make(chan Action, 1)
	go func() {
		act, err := d.Handle(context.Background(), Message{Conversation: "c", Text: "押金咋退", At: testNow}, nobody,
			func(string) { once.Do(func() { close(started) }) })
		if err != nil {
			t.Error(err)
		}
		firstDone <- act
	}()
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("the first answer never started streaming")
	}
	second := handle(t, d, "c", "几点开门", nobody)
	if second.Kind != ActionAnswer || !second.Answer.Phrased || !strings.Contains(second.Reply, "六点") {
		t.Fatalf("second: %+v", second)
	}
	select {
	case first := <-firstDone:
		if first.Kind != ActionSuperseded || first.Reply != "" {
			t.Fatalf("first: %+v", first)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the first answer was not cancelled")
	}
	select {
	case <-srv.Aborted():
	case <-time.After(3 * time.Second):
		t.Fatal("the model server never saw the first answer cancelled")
	}
	if recs.count() != 1 {
		t.Errorf("%d records: a superseded answer must not be recorded", recs.count())
	}
}

func TestDeskPhotoWithoutVisionGoesToPerson(t *testing.T) {
	d, _ := newDesk(t, nil)
	act, err := d.Handle(context.Background(), Message{Conversation: "c", Text: "这里裂了算我的吗",
		Image: &llm.Image{MIME: "image/jpeg", Data: []byte{0xff, 0xd8}}, At: testNow}, nobody, nil)
	if err != nil {
		t.Fatal(err)
	}
	if act.Kind != ActionHandoff || act.Reason != ReasonImage || !strings.Contains(act.Reply, "图片") {
		t.Fatalf("action = %+v", act)
	}
}

func TestDeskCatalogFailureHandsOver(t *testing.T) {
	a, cat := newTestAssistant(t, nil)
	cat.fail = rental.Errorf("fake", rental.KindUnavailable, "db down")
	d, _ := newDesk(t, a)
	act := handle(t, d, "c", "有没有鲫鱼竿", nobody)
	if act.Kind != ActionHandoff {
		t.Fatalf("action = %+v", act)
	}
}

func TestDeskHandoffClosesTheOpenAnswer(t *testing.T) {
	d, recs := newDesk(t, nil)
	act := handle(t, d, "c", "几点开门", nobody)
	handle(t, d, "c", "转人工", nobody)
	if r := recs.get(act.RecordID); r.Outcome != OutcomeUnresolved || r.OutcomeBy != ByHandoff {
		t.Fatalf("the answer before a handoff: %+v", r)
	}
}
