package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func noSend(Signal) error { return nil }

// Rooms and participants are limited, and the limits are clear errors.
func TestLimits(t *testing.T) {
	m := newTestManager(t, func(c *Config) { c.MaxRooms = 2; c.MaxParticipants = 3 })
	ctx := context.Background()
	join := func(room, id string) error {
		_, err := m.Join(ctx, room, ParticipantInfo{ID: id}, noSend)
		return err
	}
	for i := range 3 {
		if err := join("r1", fmt.Sprintf("p%d", i)); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	err := join("r1", "p3")
	if !errors.Is(err, ErrRoomFull) {
		t.Fatalf("fourth join: %v, want room_full", err)
	}
	var me *Error
	if !errors.As(err, &me) || me.Message == "" {
		t.Errorf("room_full error has no message for the user: %#v", err)
	}
	// Someone already in a full room coming back is a resume, not a fourth.
	if err := join("r1", "p0"); err != nil {
		t.Errorf("rejoin into a full room: %v", err)
	}

	// A room can be smaller than the manager's limit: a one-to-one call.
	if _, err := m.OpenRoom("r2", RoomOptions{MaxParticipants: 2}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := join("r2", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := join("r2", "c"); !errors.Is(err, ErrRoomFull) {
		t.Errorf("third in a 1:1 room: %v, want room_full", err)
	}
	if _, err := m.OpenRoom("r2", RoomOptions{AudioOnly: true}); !errors.Is(err, ErrRoomMismatch) {
		t.Errorf("reopen with other options: %v, want room_mismatch", err)
	}

	if err := join("r3", "x"); !errors.Is(err, ErrTooManyRooms) {
		t.Errorf("third room: %v, want too_many_rooms", err)
	}
	for _, tc := range []struct{ room, id string }{{"bad room", "x"}, {"r1", "a:b"}, {"r1", ""}, {strings.Repeat("r", 65), "x"}} {
		if err := join(tc.room, tc.id); !errors.Is(err, ErrInvalid) {
			t.Errorf("join(%q, %q) = %v, want invalid", tc.room, tc.id, err)
		}
	}
	if st := m.Stats(); st.Rooms != 2 || st.Participants != 5 {
		t.Errorf("stats %+v, want 2 rooms, 5 participants", st)
	}
}

// A voice call: video offered is refused (m-line rejected, error signal)
// and only audio is forwarded.
func TestAudioOnlyRoomRefusesVideo(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, nil)
	if _, err := m.OpenRoom("voice", RoomOptions{AudioOnly: true}); err != nil {
		t.Fatal(err)
	}
	a := newClient(t, m, "voice", "alice", clientOptions{audio: true, video: true})
	b := newClient(t, m, "voice", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	b.startMedia()
	waitPackets(t, a, "audio", 30, 10*time.Second, "bob")
	waitPackets(t, b, "audio", 30, 10*time.Second, "alice")
	time.Sleep(200 * time.Millisecond)

	for _, c := range []*testClient{a, b} {
		for _, k := range c.trackKeys() {
			if strings.HasSuffix(k, "/video") {
				t.Errorf("%s received video %s in a voice call", c.id, k)
			}
		}
		errs := c.eventsOf(TypeError)
		if len(errs) == 0 || errs[0].Error.Code != CodeVideoNotAllowed {
			t.Errorf("%s got errors %+v, want video_not_allowed", c.id, errs)
		}
		if sdp := c.pc.CurrentRemoteDescription().SDP; !strings.Contains(sdp[strings.Index(sdp, "m=video"):], "a=inactive") {
			t.Errorf("%s: the answer did not make video inactive", c.id)
		}
		if j := c.joined[0]; !j.AudioOnly {
			t.Errorf("%s: joined does not say audioOnly", c.id)
		}
	}
	if st := m.Stats(); st.PublishedTracks != 2 || st.Subscriptions != 2 {
		t.Errorf("stats %+v, want 2 audio tracks and 2 subscriptions", st)
	}
}

// An audio-only participant in a video room (a voice leg) receives and
// sends only audio, while the others see each other.
func TestAudioOnlyParticipant(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, nil)
	a := newClient(t, m, "mixed", "alice", clientOptions{audio: true, video: true})
	v := newClient(t, m, "mixed", "vic", clientOptions{audio: true, info: ParticipantInfo{ID: "vic", AudioOnly: true}})
	a.join()
	v.join()
	a.startMedia()
	v.startMedia()
	waitPackets(t, v, "audio", 30, 10*time.Second, "alice")
	waitPackets(t, a, "audio", 30, 10*time.Second, "vic")
	time.Sleep(200 * time.Millisecond)
	if rt := v.received("alice", "video"); rt != nil {
		t.Errorf("audio-only participant received video")
	}
}

// A participant whose transport drops is kept, media and all, and a Join
// with its id within ReconnectGrace resumes it: the others never see it
// leave, and what changed meanwhile (a newcomer's tracks) reaches it.
func TestReconnectWithinGraceResumes(t *testing.T) {
	t.Parallel()
	var lefts atomic.Int64
	m := newTestManager(t, func(c *Config) {
		c.ReconnectGrace = 5 * time.Second
		c.Hooks.OnParticipantLeft = func(ParticipantEvent) { lefts.Add(1) }
	})
	a := newClient(t, m, "re", "alice", clientOptions{audio: true, video: true})
	b := newClient(t, m, "re", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	b.startMedia()
	waitPackets(t, b, "video", 20, 10*time.Second, "alice")
	waitPackets(t, a, "video", 20, 10*time.Second, "bob")

	a.session().Close() // the WebSocket dropped
	if st := serverParticipant(t, m, "re", "alice").state(); st.Connected {
		t.Error("detached participant still reported connected")
	}
	// The PeerConnection is untouched: media keeps flowing meanwhile.
	waitPackets(t, b, "video", b.packetsFrom("alice", "video")+20, 5*time.Second, "alice")

	// Someone arrives while alice is away; the offer for the newcomer's
	// tracks cannot reach her now.
	c := newClient(t, m, "re", "chen", clientOptions{audio: true, video: true})
	c.join()
	c.startMedia()
	waitPackets(t, b, "video", 10, 10*time.Second, "chen")

	j := a.rejoin()
	if !j.Resumed {
		t.Error("joined after rejoin is not marked resumed")
	}
	if len(j.Participants) != 2 {
		t.Errorf("rejoin lists %d others, want bob and chen", len(j.Participants))
	}
	waitPackets(t, a, "video", 10, 10*time.Second, "chen")
	waitPackets(t, c, "video", 10, 10*time.Second, "alice")
	if n := lefts.Load(); n != 0 {
		t.Errorf("%d participant-left hooks during a reconnect", n)
	}
	if ev := b.eventsOf(TypeParticipantLeft); len(ev) != 0 {
		t.Errorf("bob saw alice leave")
	}
	if st := m.Stats(); st.Participants != 3 || st.PublishedTracks != 6 || st.Subscriptions != 12 {
		t.Errorf("stats %+v, want 3 participants, 6 tracks, 12 subscriptions", st)
	}
}

// A participant that does not come back within ReconnectGrace is removed:
// the others are told why and stop receiving its tracks.
func TestGraceExpiryRemovesParticipant(t *testing.T) {
	t.Parallel()
	left := make(chan ParticipantEvent, 4)
	m := newTestManager(t, func(c *Config) {
		c.ReconnectGrace = 400 * time.Millisecond
		c.Hooks.OnParticipantLeft = func(e ParticipantEvent) { left <- e }
	})
	a := newClient(t, m, "gone", "alice", clientOptions{audio: true, video: true})
	b := newClient(t, m, "gone", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	b.startMedia()
	waitPackets(t, b, "video", 10, 10*time.Second, "alice")

	a.session().Close()
	select {
	case e := <-left:
		if e.Participant.ID != "alice" || e.Reason != ReasonTimeout || e.Duration <= 0 {
			t.Errorf("left event %+v, want alice, timeout, a duration", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alice was never removed")
	}
	waitFor(t, 5*time.Second, "bob to hear alice left", func() bool {
		ev := b.eventsOf(TypeParticipantLeft)
		return len(ev) == 1 && ev[0].Participant.ID == "alice" && ev[0].Reason == ReasonTimeout
	})
	waitFor(t, 5*time.Second, "alice's tracks to leave bob's session", func() bool {
		d := b.pc.CurrentRemoteDescription()
		return d != nil && !strings.Contains(d.SDP, "msid:alice ")
	})
	if st := m.Stats(); st.Participants != 1 || st.PublishedTracks != 2 || st.Subscriptions != 0 {
		t.Errorf("stats %+v, want bob alone with his 2 tracks", st)
	}
}

// A room nobody is in closes after EmptyRoomGrace, not before; coming
// back within it keeps the room.
func TestEmptyRoomClosesAfterGrace(t *testing.T) {
	t.Parallel()
	closed := make(chan RoomEvent, 4)
	m := newTestManager(t, func(c *Config) {
		c.EmptyRoomGrace = 400 * time.Millisecond
		c.Hooks.OnRoomClosed = func(e RoomEvent) { closed <- e }
	})
	ctx := context.Background()
	s, err := m.Join(ctx, "call", ParticipantInfo{ID: "alice"}, noSend)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := m.Room("call")
	_ = s.Handle(ctx, Signal{Type: TypeLeave})
	time.Sleep(150 * time.Millisecond)
	r2, ok := m.Room("call")
	if !ok || r2 != r1 {
		t.Fatal("room closed before its grace")
	}
	s, err = m.Join(ctx, "call", ParticipantInfo{ID: "alice"}, noSend)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if r3, ok := m.Room("call"); !ok || r3 != r1 {
		t.Fatal("coming back within the grace did not keep the room")
	}
	_ = s.Handle(ctx, Signal{Type: TypeLeave})
	select {
	case e := <-closed:
		if e.Room != "call" || e.Reason != "empty" || e.PeakParticipants != 1 || e.Duration < 550*time.Millisecond ||
			e.Closed.Sub(e.Opened) < e.Duration+400*time.Millisecond {
			t.Errorf("room event %+v: want call, empty, peak 1, duration to the last leave", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("empty room never closed")
	}
	if _, ok := m.Room("call"); ok || m.Stats().Rooms != 0 {
		t.Error("closed room still listed")
	}
	select {
	case e := <-closed:
		t.Errorf("room closed twice: %+v", e)
	default:
	}

	// A room opened for a call nobody answers closes the same way.
	if _, err := m.OpenRoom("unanswered", RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e.Room != "unanswered" || e.Duration != 0 {
			t.Errorf("unanswered room event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("unanswered room never closed")
	}
}

// Mute states are relayed to the others and shown in room info.
func TestMuteIsRelayed(t *testing.T) {
	m := newTestManager(t, nil)
	ctx := context.Background()
	got := make(chan Signal, 16)
	sa, err := m.Join(ctx, "m", ParticipantInfo{ID: "alice"}, noSend)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Join(ctx, "m", ParticipantInfo{ID: "bob"}, func(s Signal) error { got <- s; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := sa.Handle(ctx, Signal{Type: TypeMute, Kind: "video", Muted: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-got:
			if s.Type != TypeMute {
				continue
			}
			if s.Participant == nil || s.Participant.ID != "alice" || s.Kind != "video" || !s.Muted || !s.Participant.VideoMuted {
				t.Errorf("mute signal %+v", s)
			}
			r, _ := m.Room("m")
			if ps := r.Info().Participants; !ps[0].VideoMuted || ps[0].AudioMuted {
				t.Errorf("room info %+v, want alice video muted", ps[0])
			}
			if err := sa.Handle(ctx, Signal{Type: TypeMute, Kind: "screen", Muted: true}); !errors.Is(err, ErrInvalid) {
				t.Errorf("mute of an unknown kind: %v", err)
			}
			return
		case <-deadline:
			t.Fatal("no mute signal")
		}
	}
}

// Joining and leaving again and again leaves no goroutine behind: every
// PeerConnection, forwarding loop, RTCP reader and session writer ends.
// Not parallel: it counts the whole process's goroutines, and Go runs
// parallel tests only after the serial ones have finished.
func TestChurnReleasesGoroutines(t *testing.T) {
	count := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	settle := func(what string, limit int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for n := count(); n > limit; n = count() {
			if time.Now().After(deadline) {
				_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
				t.Fatalf("%d goroutines %s, %d before", n, what, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	before := count()
	m := newTestManager(t, func(c *Config) { c.EmptyRoomGrace = 50 * time.Millisecond })
	time.Sleep(100 * time.Millisecond)
	base := count()
	const cycles = 20
	for i := range cycles {
		room := fmt.Sprintf("churn-%d", i%3)
		a := newClient(t, m, room, "a", clientOptions{audio: true, video: true})
		b := newClient(t, m, room, "b", clientOptions{audio: true, video: true})
		a.join()
		b.join()
		a.startMedia()
		b.startMedia()
		waitPackets(t, b, "video", 3, 10*time.Second, "a")
		waitPackets(t, a, "video", 3, 10*time.Second, "b")
		a.leave()
		b.leave()
	}
	waitFor(t, 10*time.Second, "every room to close", func() bool {
		st := m.Stats()
		return st.Rooms == 0 && st.Participants == 0
	})
	settle(fmt.Sprintf("after %d join/leave cycles", cycles), base)
	if st := m.Stats(); st.PacketsForwarded == 0 {
		t.Error("forwarded-packet totals lost when subscriptions ended")
	}
	m.Close()
	settle("after Manager.Close", before)
}

// A client that closes its PeerConnection without "leave" (a page closed)
// is removed at once: a closed connection cannot come back.
func TestHangupWithoutLeave(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, func(c *Config) { c.ReconnectGrace = time.Minute })
	a := newClient(t, m, "hang", "alice", clientOptions{audio: true, video: true})
	b := newClient(t, m, "hang", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	waitPackets(t, b, "video", 10, 10*time.Second, "alice")
	a.close() // no leave signal
	waitFor(t, 5*time.Second, "bob to hear alice hung up", func() bool {
		ev := b.eventsOf(TypeParticipantLeft)
		return len(ev) == 1 && ev[0].Participant.ID == "alice" && ev[0].Reason == ReasonHangup
	})
}

// ICE that fails and is not restarted within ReconnectGrace removes the
// participant, and its client is told so it can join afresh.
func TestICEFailureWithoutRestartRemoves(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, func(c *Config) {
		c.ICEDisconnectedTimeout = 500 * time.Millisecond
		c.ICEFailedTimeout = 500 * time.Millisecond
		c.ICEKeepaliveInterval = 100 * time.Millisecond
		c.ReconnectGrace = 500 * time.Millisecond
	})
	proxy := newLossyProxy(t, 0, 1)
	a := newClient(t, m, "fail", "alice", clientOptions{audio: true, video: true, proxy: proxy})
	b := newClient(t, m, "fail", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	waitPackets(t, b, "video", 10, 10*time.Second, "alice")
	proxy.blackhole.Store(true)
	waitFor(t, 10*time.Second, "alice to be told she was removed", func() bool {
		ev := a.eventsOf(TypeParticipantLeft)
		return len(ev) == 1 && ev[0].Participant.ID == "alice" && ev[0].Reason == ReasonFailed
	})
	waitFor(t, 5*time.Second, "bob to hear it", func() bool {
		ev := b.eventsOf(TypeParticipantLeft)
		return len(ev) == 1 && ev[0].Reason == ReasonFailed
	})
	select {
	case <-a.session().Done():
	case <-time.After(5 * time.Second):
		t.Error("the removed participant's session did not end")
	}
}

// CloseRoom ends a call for everyone: each client is told, each session
// ends, and the room is gone.
func TestCloseRoom(t *testing.T) {
	t.Parallel()
	closed := make(chan RoomEvent, 1)
	m := newTestManager(t, func(c *Config) { c.Hooks.OnRoomClosed = func(e RoomEvent) { closed <- e } })
	ctx := context.Background()
	got := make(chan string, 16)
	var sessions []*Session
	for _, id := range []string{"alice", "bob"} {
		s, err := m.Join(ctx, "end", ParticipantInfo{ID: id}, func(s Signal) error { got <- id + ":" + s.Type; return nil })
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	if err := m.CloseRoom("end"); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("session not ended")
		}
		if err := s.Handle(ctx, Signal{Type: TypeMute, Kind: "audio"}); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("Handle after the room closed: %v, want session_closed", err)
		}
	}
	// Done waits for the last signal, so it is here already.
	seen := map[string]bool{}
	for len(got) > 0 {
		seen[<-got] = true
	}
	if !seen["alice:room-closed"] || !seen["bob:room-closed"] {
		t.Errorf("signals %v, want room-closed to both", seen)
	}
	if e := <-closed; e.Room != "end" || e.Reason != "closed" || e.PeakParticipants != 2 {
		t.Errorf("room event %+v", e)
	}
	if err := m.CloseRoom("end"); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("closing it again: %v, want room_not_found", err)
	}
}

// The server's candidates honour the port range and announce the public
// address of a server behind 1:1 NAT instead of its own.
func TestCandidateSettings(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, func(c *Config) {
		c.UDPPortMin, c.UDPPortMax = 41000, 41050
		c.PublicIPs = []string{"203.0.113.7"}
	})
	api, err := newClientAPI(&rtcpCounters{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	cands := make(chan string, 32)
	s, err := m.Join(context.Background(), "nat", ParticipantInfo{ID: "c"}, func(sig Signal) error {
		if sig.Type == TypeCandidate {
			cands <- sig.Candidate.Candidate
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(context.Background(), Signal{Type: TypeOffer, SDP: &offer}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-cands:
		f := strings.Fields(c)
		port, _ := strconv.Atoi(f[5])
		if f[4] != "203.0.113.7" || port < 41000 || port > 41050 {
			t.Errorf("candidate %q: want 203.0.113.7 and a port in 41000-41050", c)
		}
		if !strings.Contains(c, " ufrag ") {
			t.Errorf("candidate %q carries no ufrag", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no candidate")
	}
}
