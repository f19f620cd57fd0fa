package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// Rooms configures the video rooms: /api/v1/rooms hands out signed room
// tokens; /ws?token= carries the room's signaling (media's JSON protocol,
// see media/doc.go) over a WebSocket.
type Rooms struct {
	Manager  *media.Manager
	TokenTTL time.Duration // default 2 h
	// ICE, if set, lists the STUN/TURN servers room answers hand to
	// clients, TURN with short-lived credentials (see turn.go).
	ICE *media.ICEServers
}

// roomClaims is what a room token carries: which room, who, in which role.
type roomClaims struct {
	Room        string `json:"room"`
	Participant string `json:"pid"`
	Name        string `json:"name,omitempty"`
	Role        string `json:"role"`
	jwt.RegisteredClaims
}

type roomHandlers struct {
	rooms *Rooms
	key   []byte
	srv   *Server // for the live channel's /ws?access=
}

func (s *Server) mountRooms(r *Rooms) {
	if r.TokenTTL == 0 {
		r.TokenTTL = 2 * time.Hour
	}
	// A key of its own, derived like the access-token key: a room token can
	// never pass as an access token or the other way round.
	h := &roomHandlers{rooms: r, key: s.auth.derive("tacklegate room tokens v1"), srv: s}
	s.api("POST", "/rooms", signedIn, h.create)
	s.api("POST", "/rooms/:id/join", signedIn, h.join)
	s.app.Use("/ws", h.upgrade)
	s.app.Get("/ws", websocket.New(h.serve, websocket.Config{HandshakeTimeout: 10 * time.Second}))
}

// participantID names the caller inside a room (it becomes the WebRTC
// stream id, so only safe characters).
func participantID(p Principal) string {
	id := string(p.Role)[:1] + "-" + strings.NewReplacer(":", "-", "@", "-").Replace(p.Subject)
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}

func (h *roomHandlers) token(room string, p Principal) (string, error) {
	now := time.Now()
	c := roomClaims{Room: room, Participant: participantID(p), Role: string(p.Role), RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(h.rooms.TokenTTL)), Issuer: "tacklegate-rooms",
	}}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(h.key)
	return t, rental.Wrap("rooms.token", rental.KindInternal, "", err)
}

func (h *roomHandlers) answer(c *fiber.Ctx, room string, audioOnly bool) error {
	tok, err := h.token(room, caller(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"room_id": room, "audio_only": audioOnly, "token": tok,
		"expires_in": int(h.rooms.TokenTTL.Seconds()), "ws": "/ws?token=" + tok, "page": "/room/" + room,
		"ice_servers": h.iceServers(participantID(caller(c)))})
}

// create opens a room (a video help call, or a voice call with audio_only)
// and returns the caller's token for it. Room ids are random: knowing one is
// what lets the other side join.
func (h *roomHandlers) create(c *fiber.Ctx) error {
	var in struct {
		AudioOnly bool `json:"audio_only"`
	}
	if len(c.Body()) > 0 {
		if err := body(c, &in); err != nil {
			return err
		}
	}
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	room := "r-" + hex.EncodeToString(b[:])
	if _, err := h.rooms.Manager.OpenRoom(room, media.RoomOptions{AudioOnly: in.AudioOnly}); err != nil {
		return err
	}
	return h.answer(c, room, in.AudioOnly)
}

// join returns a token for an open room.
func (h *roomHandlers) join(c *fiber.Ctx) error {
	room := string([]byte(c.Params("id")))
	r, ok := h.rooms.Manager.Room(room)
	if !ok {
		return rental.Errorf("rooms.join", rental.KindNotFound, "视频通话已结束或不存在 (no such room)")
	}
	return h.answer(c, room, r.Info().AudioOnly)
}

const localsRoom = "room_claims"

var errSocketClosed = errors.New("the signaling socket is closed")

// upgrade checks the room token before the WebSocket handshake, so a bad
// token is an ordinary JSON 401.
func (h *roomHandlers) upgrade(c *fiber.Ctx) error {
	if c.Query("access") != "" {
		return h.srv.liveUpgrade(c) // the live channel (live.go), not a room
	}
	if !websocket.IsWebSocketUpgrade(c) {
		return fiber.ErrUpgradeRequired
	}
	var rc roomClaims
	_, err := jwt.ParseWithClaims(c.Query("token"), &rc, func(*jwt.Token) (any, error) { return h.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(), jwt.WithIssuer("tacklegate-rooms"))
	if err != nil {
		return rental.Wrap("rooms.upgrade", rental.KindUnauthorized, "通话链接无效或已过期 (room token invalid or expired)", err)
	}
	c.Locals(localsRoom, rc)
	return c.Next()
}

// serve joins the room and relays signals both ways until either side ends.
func (h *roomHandlers) serve(conn *websocket.Conn) {
	rc, _ := conn.Locals(localsRoom).(roomClaims)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One writer at a time on the socket, and none after this handler
	// returns: media may still send while a session winds down, but the
	// WebSocket wrapper recycles conn as soon as we return.
	var mu sync.Mutex
	closed := false
	defer func() { mu.Lock(); closed = true; mu.Unlock() }()
	send := func(sig media.Signal) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return errSocketClosed
		}
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		return conn.WriteJSON(sig)
	}
	sess, err := h.rooms.Manager.Join(ctx, rc.Room, media.ParticipantInfo{ID: rc.Participant, Name: rc.Name, Role: rc.Role}, send)
	if err != nil {
		var me *media.Error
		msg := "无法加入通话 (cannot join)"
		if errors.As(err, &me) && me.Message != "" {
			msg = me.Message
		}
		send(media.Signal{Type: "error", Error: &media.SignalError{Code: "join_failed", Message: msg}}) //nolint:errcheck
		return
	}
	// When the session ends (left, removed, room closed) the socket is
	// closed, which ends the read loop below. The watcher must be finished
	// before this handler returns: the WebSocket wrapper recycles conn then.
	handlerDone := make(chan struct{})
	watcherDone := make(chan struct{})
	defer func() { close(handlerDone); <-watcherDone }()
	go func() {
		defer close(watcherDone)
		select {
		case <-sess.Done():
			conn.Close()
		case <-handlerDone:
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			sess.Close() // the socket went away: keep the participant for the reconnect grace
			return
		}
		var sig media.Signal
		if err := json.Unmarshal(data, &sig); err != nil {
			send(media.Signal{Type: "error", Error: &media.SignalError{Code: "invalid", Message: "信令不是有效的 JSON (signal is not valid JSON)"}}) //nolint:errcheck
			continue
		}
		sess.Handle(ctx, sig) //nolint:errcheck // Handle reports errors to the client itself
	}
}
