package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// The live channel: /ws?access=<access token> for signed-in customers and
// staff (the video rooms' /ws?token=<room token> is the other use of /ws,
// see rooms.go). Server → client events are JSON objects with a "type":
//
//	message       new messages of a conversation: the customer's own (not
//	              internal notes) to the customer, every one to staff
//	conversation  a conversation's state, assignee, tags changed
//	delivery      delivery statuses changed (re-read the transcript)
//	presence      what customers are told about staff presence
//
// Staff send {"type":"heartbeat"} (the console every 20 s): presence
// counts them online. Anyone may send {"type":"ping"} and gets a "pong".
//
// The bridge reports which conversations changed after each commit
// (BridgeOptions.Changed). With Redis the ids go to every instance over
// pub/sub and each instance tells its own sockets; without, this process
// tells its own. Events are hints with the new data when it is cheap; a
// client that reconnects re-reads what it shows, so an event lost with a
// Redis hiccup costs a refresh, not a message.

// LiveBus carries change notices between instances (adapters/redis.Bus).
type LiveBus interface {
	Publish(ctx context.Context, payload []byte) error
	Subscribe(ctx context.Context, ready chan<- struct{}, fn func([]byte)) error
}

// LiveOptions configure the live channel. DB is required.
type LiveOptions struct {
	DB       *store.DB
	Bus      LiveBus // nil: this process only
	Presence *Presence
	Logger   *slog.Logger
}

// Live is the hub of the live channel's sockets on this instance.
type Live struct {
	o   LiveOptions
	log *slog.Logger
	ws  fiber.Handler

	mu            sync.Mutex
	conns         map[*liveConn]bool
	dirty         map[rental.ConversationID]bool
	presenceDirty bool
	lastSeq       map[rental.ConversationID]int
	lastState     map[rental.ConversationID]string
	kick          chan struct{}
}

// liveConn is one socket.
type liveConn struct {
	role    rental.Role
	subject string // staff: WeCom userid; owner: username
	member  rental.MemberID
	session int64
	out     chan []byte
	kill    chan struct{}
	once    sync.Once
}

func (c *liveConn) staff() bool { return c.role == rental.RoleStaff || c.role == rental.RoleOwner }

// send queues an event; a socket too slow to take it is closed (its
// client reconnects and re-reads).
func (c *liveConn) send(b []byte) {
	select {
	case c.out <- b:
	default:
		c.close()
	}
}

func (c *liveConn) close() { c.once.Do(func() { close(c.kill) }) }

// NewLive builds the hub; Run delivers its events.
func NewLive(o LiveOptions) *Live {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Live{o: o, log: o.Logger.With("component", "live"), conns: map[*liveConn]bool{}, dirty: map[rental.ConversationID]bool{},
		lastSeq: map[rental.ConversationID]int{}, lastState: map[rental.ConversationID]string{}, kick: make(chan struct{}, 1)}
	l.ws = websocket.New(l.serve, websocket.Config{HandshakeTimeout: 10 * time.Second})
	return l
}

type liveNotice struct {
	Conversations []rental.ConversationID `json:"c,omitempty"`
	Presence      bool                    `json:"p,omitempty"`
}

// Changed is BridgeOptions.Changed: tell every instance which
// conversations changed.
func (l *Live) Changed(ids []rental.ConversationID) { l.notice(liveNotice{Conversations: ids}) }

// PresenceChanged is PresenceOptions.Changed.
func (l *Live) PresenceChanged() { l.notice(liveNotice{Presence: true}) }

func (l *Live) notice(n liveNotice) {
	if l.o.Bus != nil {
		b, _ := json.Marshal(n)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := l.o.Bus.Publish(ctx, b)
		cancel()
		if err == nil {
			return
		}
		l.log.Warn("live: cannot publish through Redis; telling this instance only", "error", err)
	}
	l.mark(n)
}

func (l *Live) mark(n liveNotice) {
	l.mu.Lock()
	for _, id := range n.Conversations {
		l.dirty[id] = true
	}
	l.presenceDirty = l.presenceDirty || n.Presence
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run delivers events until ctx ends: it listens on the bus when there is
// one, and dispatches what changed to this instance's sockets.
func (l *Live) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if l.o.Bus != nil {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := l.o.Bus.Subscribe(ctx, ready, func(b []byte) {
					var n liveNotice
					if json.Unmarshal(b, &n) == nil {
						l.mark(n)
					}
				})
				ready = nil
				if err != nil && ctx.Err() == nil {
					l.log.Warn("live: Redis subscription failed; retrying", "error", err)
					select {
					case <-ctx.Done():
					case <-time.After(2 * time.Second):
					}
				}
			}
		}()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		}
		l.mu.Lock()
		ids := make([]rental.ConversationID, 0, len(l.dirty))
		for id := range l.dirty {
			ids = append(ids, id)
		}
		clear(l.dirty)
		presence := l.presenceDirty
		l.presenceDirty = false
		l.mu.Unlock()
		for _, id := range ids {
			l.dispatch(ctx, id)
		}
		if presence {
			l.dispatchPresence(ctx)
		}
	}
}

func (l *Live) snapshot() []*liveConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*liveConn, 0, len(l.conns))
	for c := range l.conns {
		out = append(out, c)
	}
	return out
}

func liveEvent(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// liveConversation is what a staff "conversation" event says.
type liveConversation struct {
	ID            rental.ConversationID    `json:"id"`
	Code          string                   `json:"code"`
	State         rental.ConversationState `json:"state"`
	Assignee      string                   `json:"assignee,omitempty"`
	Tags          []string                 `json:"tags,omitempty"`
	CustomerLabel string                   `json:"customer_label"`
	MsgCount      int                      `json:"msg_count"`
}

// dispatch tells the sockets interested in one conversation what changed.
func (l *Live) dispatch(ctx context.Context, id rental.ConversationID) {
	conns := l.snapshot()
	if len(conns) == 0 {
		return
	}
	conv, err := l.o.DB.Conversation(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("live: cannot read a changed conversation", "conversation", id, "error", err)
		}
		return
	}
	var staff, customers []*liveConn
	for _, c := range conns {
		switch {
		case c.staff():
			staff = append(staff, c)
		case c.member == conv.MemberID:
			customers = append(customers, c)
		}
	}
	if len(staff) == 0 && len(customers) == 0 {
		return
	}
	l.mu.Lock()
	known, ok := l.lastSeq[id]
	if !ok || known > conv.Head.Count {
		known = max(conv.Head.Count-1, 0) // not seen here before: the newest only
	}
	stateChanged := l.lastState[id] != string(conv.State)+"\x00"+conv.Assignee
	l.lastSeq[id], l.lastState[id] = conv.Head.Count, string(conv.State)+"\x00"+conv.Assignee
	l.mu.Unlock()
	var msgs []rental.ChatMessage
	if conv.Head.Count > known {
		if msgs, err = l.o.DB.ChatPage(ctx, id, 0, known, 50, true); err != nil {
			l.log.Warn("live: cannot read new messages", "conversation", id, "error", err)
			return
		}
	}
	names := newStaffNames(ctx, l.o.DB)
	if len(staff) > 0 {
		label := "顾客"
		if m, err := l.o.DB.Member(ctx, conv.MemberID); err == nil {
			label = rental.CustomerLabel(m)
		}
		convEvent := liveEvent(fiber.Map{"type": "conversation", "conversation": liveConversation{ID: conv.ID, Code: conv.Code(), State: conv.State,
			Assignee: conv.Assignee, Tags: conv.Tags, CustomerLabel: label, MsgCount: conv.Head.Count}})
		var second []byte
		if len(msgs) > 0 {
			views := make([]chatMessageView, len(msgs))
			for i, m := range msgs {
				views[i] = chatMessageOf(m, false)
			}
			second = liveEvent(fiber.Map{"type": "message", "conversation_id": id, "messages": views})
		} else {
			second = liveEvent(fiber.Map{"type": "delivery", "conversation_id": id})
		}
		for _, c := range staff {
			c.send(convEvent)
			c.send(second)
		}
	}
	if len(customers) > 0 {
		var views []chatCustomerMessage
		for _, m := range msgs {
			if m.Direction != rental.ChatNote {
				views = append(views, customerMessageOf(m, names))
			}
		}
		var events [][]byte
		if len(views) > 0 {
			events = append(events, liveEvent(fiber.Map{"type": "message", "conversation_id": id, "messages": views}))
		}
		if stateChanged {
			events = append(events, liveEvent(fiber.Map{"type": "conversation", "conversation": conversationBrief(&conv, names)}))
		}
		if len(events) == 0 {
			events = append(events, liveEvent(fiber.Map{"type": "delivery", "conversation_id": id}))
		}
		for _, c := range customers {
			for _, e := range events {
				c.send(e)
			}
		}
	}
}

// presenceEvent is the "presence" event; staff also get each colleague's
// state.
func (l *Live) presenceEvents(ctx context.Context) (forCustomers, forStaff []byte, err error) {
	if l.o.Presence == nil {
		return nil, nil, nil
	}
	v, err := l.o.Presence.Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	loads, err := l.o.DB.StaffLoads(ctx)
	if err != nil {
		return nil, nil, err
	}
	type staffState struct {
		UserID string `json:"userid"`
		Name   string `json:"name"`
		Status string `json:"status"`
		Open   int    `json:"open"`
		OnDuty bool   `json:"on_duty"`
	}
	list := make([]staffState, len(loads))
	for i, ld := range loads {
		list[i] = staffState{UserID: ld.UserID, Name: ld.Name, Status: l.o.Presence.StaffStatus(ld), Open: ld.Open, OnDuty: ld.OnDuty}
	}
	return liveEvent(fiber.Map{"type": "presence", "presence": v}), liveEvent(fiber.Map{"type": "presence", "presence": v, "staff": list}), nil
}

func (l *Live) dispatchPresence(ctx context.Context) {
	conns := l.snapshot()
	if len(conns) == 0 {
		return
	}
	cust, staff, err := l.presenceEvents(ctx)
	if err != nil || cust == nil {
		return
	}
	for _, c := range conns {
		if c.staff() {
			c.send(staff)
		} else {
			c.send(cust)
		}
	}
}

// seen tells presence a socket is there: a staff heartbeat, or a customer
// with the chat open.
func (l *Live) seen(lc *liveConn) {
	switch {
	case l.o.Presence == nil:
	case lc.role == rental.RoleStaff:
		l.o.Presence.Heartbeat(lc.subject)
	case lc.role == rental.RoleCustomer:
		l.o.Presence.CustomerSeen(lc.member)
	}
}

const localsLive = "live_conn"

// liveUpgrade checks the access token before the WebSocket handshake (a
// bad one is an ordinary JSON 401) and hands the socket to the hub.
func (s *Server) liveUpgrade(c *fiber.Ctx) error {
	const op = "live.upgrade"
	if s.live == nil {
		return rental.Errorf(op, rental.KindNotFound, "实时通道未开通 (the live channel is off)")
	}
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.ErrUpgradeRequired
	}
	p, err := s.auth.authenticate(c.UserContext(), "Bearer "+c.Query("access"))
	if err != nil {
		return err
	}
	lc := &liveConn{role: p.Role, subject: p.Subject, session: p.SessionID, out: make(chan []byte, 64), kill: make(chan struct{})}
	if p.Role == rental.RoleCustomer {
		m, err := (&identityHandlers{id: s.opts.Identity}).customerMember(c.UserContext(), p)
		if err != nil {
			return err
		}
		lc.member = m.ID
	}
	c.Locals(localsLive, lc)
	return s.live.ws(c)
}

// serve runs one socket: a writer goroutine sends queued events, pings,
// and closes the socket when its session ends; this handler reads. The
// writer is finished before the handler returns: the WebSocket wrapper
// recycles conn then (see rooms.go).
func (l *Live) serve(conn *websocket.Conn) {
	lc, _ := conn.Locals(localsLive).(*liveConn)
	if lc == nil {
		return
	}
	l.mu.Lock()
	l.conns[lc] = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, lc)
		l.mu.Unlock()
	}()
	l.seen(lc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if cust, staff, err := l.presenceEvents(ctx); err == nil && cust != nil {
		if lc.staff() {
			lc.send(staff)
		} else {
			lc.send(cust)
		}
	}
	const readTimeout = 75 * time.Second
	conn.SetReadDeadline(time.Now().Add(readTimeout)) //nolint:errcheck
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(readTimeout)) })
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case b := <-lc.out:
				conn.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
				if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
					conn.Close()
					return
				}
			case <-ping.C:
				if lc.role == rental.RoleCustomer {
					l.seen(lc) // the chat is still open
				}
				live, err := l.o.DB.SessionLive(ctx, lc.session)
				if err == nil && !live {
					conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "session ended"), time.Now().Add(time.Second)) //nolint:errcheck
					conn.Close()
					return
				}
				if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
					conn.Close()
					return
				}
			case <-lc.kill:
				conn.Close()
				return
			}
		}
	}()
	defer func() { lc.close(); <-writerDone }()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(readTimeout)) //nolint:errcheck
		var in struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &in) != nil {
			lc.send(liveEvent(fiber.Map{"type": "error", "error": fiber.Map{"code": "invalid", "message": "消息不是有效的 JSON (not valid JSON)"}}))
			continue
		}
		switch in.Type {
		case "heartbeat":
			if lc.role == rental.RoleStaff && l.o.Presence != nil {
				l.o.Presence.Heartbeat(lc.subject)
			}
		case "ping":
			lc.send(liveEvent(fiber.Map{"type": "pong"}))
		}
	}
}

// MountLive adds /ws?access= and GET /api/v1/presence. With the video
// rooms mounted, /ws is theirs and dispatches here on ?access=.
func (s *Server) MountLive(l *Live) {
	s.live = l
	if l.o.Presence != nil {
		s.mountPresence(l.o.Presence)
	}
	if s.opts.Rooms == nil {
		s.app.Get("/ws", s.liveUpgrade)
	}
}
