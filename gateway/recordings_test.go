package gateway

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// publish joins room as a pion client that sends synthetic VP8 (a
// keyframe every ten frames) and Opus until the test ends.
func publish(t *testing.T, m *media.Manager, room, id string) {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", id)
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", id)
	for _, tr := range []webrtc.TrackLocal{audio, video} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	signals := make(chan media.Signal, 64)
	stop := make(chan struct{})
	sess, err := m.Join(context.Background(), room, media.ParticipantInfo{ID: id, Name: id}, func(s media.Signal) error {
		select {
		case signals <- s:
		case <-stop:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	t.Cleanup(func() { close(stop); pc.Close(); <-done; <-done })
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			sess.Handle(context.Background(), media.Signal{Type: "candidate", Candidate: &init}) //nolint:errcheck
		}
	})
	go func() { // signaling
		defer func() { done <- struct{}{} }()
		for {
			select {
			case <-stop:
				return
			case s := <-signals:
				switch s.Type {
				case "answer":
					pc.SetRemoteDescription(*s.SDP) //nolint:errcheck
				case "candidate":
					pc.AddICECandidate(*s.Candidate) //nolint:errcheck
				case "offer":
					if pc.SetRemoteDescription(*s.SDP) == nil {
						ans, _ := pc.CreateAnswer(nil)
						pc.SetLocalDescription(ans)                                                //nolint:errcheck
						sess.Handle(context.Background(), media.Signal{Type: "answer", SDP: &ans}) //nolint:errcheck
					}
				}
			}
		}
	}()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	if err := sess.Handle(context.Background(), media.Signal{Type: "offer", SDP: &offer}); err != nil {
		t.Fatal(err)
	}
	go func() { // media
		defer func() { done <- struct{}{} }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			a := make([]byte, 60)
			a[0] = 0x78                                                                   // an Opus TOC byte: one 20 ms frame
			audio.WriteSample(pionmedia.Sample{Data: a, Duration: 20 * time.Millisecond}) //nolint:errcheck
			if n%2 == 0 {
				v := make([]byte, 800)
				if n%20 != 0 {
					v[0] = 0x01 // an inter frame; every tenth is a keyframe
				}
				copy(v[3:], "from="+id)
				video.WriteSample(pionmedia.Sample{Data: v, Duration: 40 * time.Millisecond}) //nolint:errcheck
			}
		}
	}()
}

type recAnswer struct {
	recordingView
	Error struct{ Code, Message string } `json:"error"`
}

// Staff record a video inspection of an order: start, pause, resume,
// stop; the recording is chained into the order's evidence, the call is
// marked recorded, staff and the owner list and download it (each track
// a playable file), and a changed file stops the download, naming the
// segment.
func TestRecordingAnInspection(t *testing.T) {
	e := newRentalEnv(t, storetest.Targets()[0], false)
	ctx := context.Background()
	m, err := media.NewManager(media.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	recs := &Recordings{Manager: m, DB: e.db, Dir: t.TempDir(), DataKey: []byte("0123456789abcdef0123456789abcdef"),
		SegmentDuration: 300 * time.Millisecond}
	if err := e.srv.MountRecordings(ctx, recs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recs.Close)

	if _, err := m.OpenRoom("r-inspect", media.RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Gorm.Exec(`INSERT INTO calls (room_id, kind, source, state, started_at) VALUES ('r-inspect', 'video', 'console', 'answered', ?)`, time.Now()).Error; err != nil {
		t.Fatal(err)
	}
	publish(t, m, "r-inspect", "c-walker")
	eventually(t, "the customer's two tracks", func() bool {
		r, ok := m.Room("r-inspect")
		return ok && r.Info().PublishedTracks == 2
	})
	rod := e.stock(t, "路亚竿 2.1m", rental.CategoryRod, 2000, 30000, 1)
	customer := e.customerLogin(t, "o-walker")
	o := e.placeOrder(t, customer, rod, 1, 2)

	ctl := func(tok, action string, order rental.OrderID) (int, recAnswer) {
		var out recAnswer
		st := e.api(t, "POST", "/api/v1/staff/rooms/r-inspect/recording", tok, map[string]any{"action": action, "order_id": order}, &out)
		return st, out
	}
	if st, _ := ctl(customer, "start", o.ID); st != 403 {
		t.Errorf("a customer starting a recording: %d", st)
	}
	if st, out := ctl(e.staff, "start", 987654); st != 404 {
		t.Errorf("recording for an order that does not exist: %d %+v", st, out.Error)
	}
	if st, out := ctl(e.staff, "rewind", 0); st != 400 {
		t.Errorf("an unknown action: %d %+v", st, out.Error)
	}
	if st, out := ctl(e.staff, "pause", 0); st != 409 {
		t.Errorf("pausing a room not being recorded: %d %+v", st, out.Error)
	}
	st, started := ctl(e.staff, "start", o.ID)
	if st != 201 || started.State != "recording" || started.OrderID != o.ID {
		t.Fatalf("start: %d %+v", st, started)
	}
	if st, out := ctl(e.staff, "start", 0); st != 409 {
		t.Errorf("a second recording of the room: %d %+v", st, out.Error)
	}
	time.Sleep(900 * time.Millisecond)
	if st, out := ctl(e.staff, "pause", 0); st != 200 || out.State != "paused" || out.Segments == 0 {
		t.Errorf("pause: %d %+v (segments sealed before the pause are stored)", st, out)
	}
	if st, _ := ctl(e.staff, "pause", 0); st != 409 {
		t.Errorf("pausing twice: %d", st)
	}
	time.Sleep(400 * time.Millisecond)
	if st, out := ctl(e.staff, "resume", 0); st != 200 || out.State != "recording" || out.PausedMS < 300 {
		t.Errorf("resume: %d %+v", st, out)
	}
	time.Sleep(900 * time.Millisecond)
	st, stopped := ctl(e.staff, "stop", 0)
	if st != 200 || stopped.State != "stopped" || stopped.EvidenceID == 0 || len(stopped.Tracks) != 2 || len(stopped.ManifestSHA256) != 64 || stopped.Download == "" {
		t.Fatalf("stop: %d %+v", st, stopped)
	}

	// Chained into the order's evidence, and the chain verifies.
	var ev struct {
		Verification struct{ OK bool }
		Items        []struct {
			ID   rental.EvidenceID
			Kind string
		}
	}
	if st := e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d/evidence", o.ID), e.staff, nil, &ev); st != 200 || !ev.Verification.OK ||
		len(ev.Items) != 1 || ev.Items[0].Kind != "recording" || ev.Items[0].ID != stopped.EvidenceID {
		t.Errorf("the order's evidence: %d %+v", st, ev)
	}
	var recorded bool
	e.db.Gorm.Raw(`SELECT recorded FROM calls WHERE room_id = 'r-inspect'`).Scan(&recorded)
	if !recorded {
		t.Error("the call is not marked recorded")
	}

	var list struct {
		Recordings []recordingView `json:"recordings"`
		Next       string          `json:"next_cursor"`
	}
	if st := e.api(t, "GET", fmt.Sprintf("/api/v1/recordings?order_id=%d", o.ID), e.owner, nil, &list); st != 200 || len(list.Recordings) != 1 || list.Recordings[0].ID != stopped.ID {
		t.Errorf("the owner lists the order's recordings: %d %+v", st, list)
	}
	if st := e.api(t, "GET", "/api/v1/recordings", customer, nil, nil); st != 403 {
		t.Errorf("a customer listing recordings: %d", st)
	}

	download := func(tok, query string) (int, []byte) {
		req := httptest.NewRequest("GET", stopped.Download+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, body := do(t, e.srv, req)
		return resp.StatusCode, body
	}
	for _, tr := range stopped.Tracks {
		st, body := download(e.staff, "?track="+tr.ID)
		if st != 200 || int64(len(body)) != tr.Size || hexSHA(body) != tr.SHA256 {
			t.Fatalf("download %s: %d, %d bytes, want %d with the recorded hash", tr.ID, st, len(body), tr.Size)
		}
		frames := 0
		switch tr.Container {
		case "ivf":
			r, _, err := ivfreader.NewWith(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for ; ; frames++ {
				if _, _, err := r.ParseNextFrame(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("%s frame %d: %v", tr.ID, frames, err)
				}
			}
		case "ogg":
			r, _, err := oggreader.NewWith(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for ; ; frames++ {
				if _, _, err := r.ParseNextPage(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("%s page %d: %v", tr.ID, frames, err)
				}
			}
		}
		if frames < 20 {
			t.Errorf("%s: %d frames or pages in about 1.8 s recorded", tr.ID, frames)
		}
	}
	st, body := download(e.owner, "")
	if st != 200 {
		t.Fatalf("zip download: %d %s", st, body)
	}
	z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
	}
	if len(names) != 5 || names[0] != "README.txt" || names[1] != "manifest.json" || names[2] != "manifest.sig" {
		t.Fatalf("zip holds %v, want a README, the manifest, its signature and two files", names)
	}
	// What the README says a third party can check, checked.
	files := map[string][]byte{}
	for _, f := range z.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var man media.Manifest
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil {
		t.Fatal(err)
	}
	pub, _ := hex.DecodeString(man.PublicKey)
	sig, _ := hex.DecodeString(strings.TrimSpace(string(files["manifest.sig"])))
	if !ed25519.Verify(pub, files["manifest.json"], sig) || hexSHA(files["manifest.json"]) != stopped.ManifestSHA256 {
		t.Error("the zip's manifest does not verify against its signature and the recorded hash")
	}
	for _, tr := range man.Tracks {
		name := strings.NewReplacer("/", "_").Replace(tr.ID) + "." + tr.Container
		if hexSHA(files[name]) != tr.SHA256 {
			t.Errorf("zip file %s does not hash to the manifest's %s", name, tr.SHA256)
		}
	}

	// A changed segment: the download is refused, naming it.
	segs, _ := filepath.Glob(filepath.Join(recs.Dir, "rec-*", "c-walker", "*", "000001.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment files found")
	}
	b, _ := os.ReadFile(segs[0])
	b[len(b)-5] ^= 1
	os.WriteFile(segs[0], b, 0o600) //nolint:errcheck
	st, body = download(e.staff, "")
	if st != 409 || !strings.Contains(string(body), "段") || !strings.Contains(string(body), "000001.seg") {
		t.Errorf("download of a changed recording: %d %s", st, body)
	}

	// Closing the room finishes a recording in progress.
	if st, _ := ctl(e.staff, "start", 0); st != 201 {
		t.Fatalf("second recording: %d", st)
	}
	time.Sleep(500 * time.Millisecond)
	if err := m.CloseRoom("r-inspect"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second recording stopped by the room closing", func() bool {
		var l struct{ Recordings []recordingView }
		e.api(t, "GET", "/api/v1/recordings?limit=1", e.staff, nil, &l)
		return len(l.Recordings) == 1 && l.Recordings[0].State == "stopped" && l.Recordings[0].ID != stopped.ID
	})
}

// The recording routes are registered through Server.api and admit staff
// and the owner only.
func TestRecordingRoutesAreRoleChecked(t *testing.T) {
	e := newRentalEnv(t, storetest.Targets()[0], false)
	m, err := media.NewManager(media.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	recs := &Recordings{Manager: m, DB: e.db, Dir: t.TempDir(), DataKey: []byte("0123456789abcdef0123456789abcdef")}
	if err := e.srv.MountRecordings(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	customer := e.customerLogin(t, "o-nosy")
	for _, r := range []string{"POST /api/v1/staff/rooms/:id/recording", "GET /api/v1/recordings", "GET /api/v1/recordings/:id", "GET /api/v1/recordings/:id/download"} {
		roles, ok := e.srv.roles[r]
		if !ok || len(roles) != 2 {
			t.Errorf("%s: roles %v, want staff and owner", r, roles)
		}
		method, path, _ := strings.Cut(strings.ReplaceAll(r, ":id", "1"), " ")
		if st := e.api(t, method, path, "", nil, nil); st != 401 {
			t.Errorf("anonymous %s: %d", r, st)
		}
		if st := e.api(t, method, path, customer, nil, nil); st != 403 {
			t.Errorf("customer %s: %d", r, st)
		}
	}
}

// A process that dies while recording leaves the row live and the files
// without a manifest; the next start finishes the recording from its
// journal up to the head stored here, and chains it into the order.
func TestRecordingRecoveredAfterACrash(t *testing.T) {
	e := newRentalEnv(t, storetest.Targets()[0], false)
	ctx := context.Background()
	m, err := media.NewManager(media.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	key := []byte("0123456789abcdef0123456789abcdef")
	recs := &Recordings{Manager: m, DB: e.db, Dir: t.TempDir(), DataKey: key, SegmentDuration: 200 * time.Millisecond}
	if err := e.srv.MountRecordings(ctx, recs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recs.Close)
	if _, err := m.OpenRoom("r-crash", media.RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	publish(t, m, "r-crash", "c-diver")
	eventually(t, "the customer's two tracks", func() bool {
		r, ok := m.Room("r-crash")
		return ok && r.Info().PublishedTracks == 2
	})
	o := e.placeOrder(t, e.customerLogin(t, "o-diver"), e.stock(t, "抄网", rental.CategoryRod, 500, 5000, 1), 1, 1)
	var started recAnswer
	if st := e.api(t, "POST", "/api/v1/staff/rooms/r-crash/recording", e.staff, map[string]any{"action": "start", "order_id": o.ID}, &started); st != 201 {
		t.Fatalf("start: %d %+v", st, started.Error)
	}
	time.Sleep(800 * time.Millisecond)
	// Paused, the head stored here stops moving; the crash is the folder
	// as it is now, in the recordings folder of the next process.
	var paused recAnswer
	if st := e.api(t, "POST", "/api/v1/staff/rooms/r-crash/recording", e.staff, map[string]any{"action": "pause"}, &paused); st != 200 || paused.Segments == 0 {
		t.Fatalf("pause: %d %+v", st, paused)
	}
	folders, _ := filepath.Glob(filepath.Join(recs.Dir, "rec-*"))
	if len(folders) != 1 {
		t.Fatalf("recording folders %v", folders)
	}
	next := t.TempDir()
	copyTree(t, folders[0], filepath.Join(next, filepath.Base(folders[0])))

	restarted := &Recordings{Manager: m, DB: e.db, Dir: next, DataKey: key}
	if err := restarted.setup(ctx); err != nil {
		t.Fatal(err)
	}
	var got recAnswer
	if st := e.api(t, "GET", fmt.Sprintf("/api/v1/recordings/%d", started.ID), e.staff, nil, &got); st != 200 ||
		got.State != "stopped" || got.Segments != paused.Segments || got.ChainHead != paused.ChainHead || got.EvidenceID == 0 || len(got.Tracks) != 2 {
		t.Fatalf("after the restart: %d %+v; paused at %d segments, head %s", st, got, paused.Segments, paused.ChainHead)
	}
	var ev struct {
		Verification struct{ OK bool }
		Items        []struct{ Kind, Name string }
	}
	if st := e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d/evidence", o.ID), e.staff, nil, &ev); st != 200 || !ev.Verification.OK ||
		len(ev.Items) != 1 || ev.Items[0].Kind != "recording" || !strings.Contains(ev.Items[0].Name, "恢复") {
		t.Errorf("the order's evidence after recovery: %d %+v", st, ev)
	}
	dir := filepath.Join(next, filepath.Base(folders[0]))
	pub := media.RecordingSigningKey(RecordingKey(key)).Public().(ed25519.PublicKey)
	if _, err := media.VerifyRecording(dir, media.VerifyOptions{PublicKey: pub, Key: RecordingKey(key), Head: got.ChainHead}); err != nil {
		t.Errorf("the recovered recording does not verify: %v", err)
	}
	if sum, _ := fileSHA256(filepath.Join(dir, "manifest.json")); sum != got.ManifestSHA256 {
		t.Error("the stored manifest hash is not the recovered manifest's")
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
