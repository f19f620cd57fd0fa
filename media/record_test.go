package media

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

var recKey = bytes.Repeat([]byte{7}, 32)

type recorded struct {
	fin     *FinishedRecording
	heads   []string
	pliBump uint64
	gap     Gap
}

// recordCall records a real call between two pion clients through the
// SFU: a while, a pause, a while more.
func recordCall(t *testing.T, dir string) recorded {
	t.Helper()
	m := newTestManager(t, nil)
	a := newClient(t, m, "rec", "alice", clientOptions{audio: true, video: true})
	b := newClient(t, m, "rec", "bob", clientOptions{audio: true, video: true})
	a.join()
	b.join()
	a.startMedia()
	b.startMedia()
	waitPackets(t, a, "video", 10, 10*time.Second, "bob")
	waitPackets(t, b, "video", 10, 10*time.Second, "alice")
	waitSettled(t, m, a)
	alice := serverParticipant(t, m, "rec", "alice")
	pliBefore := alice.counters.pliSent.Load()

	var mu sync.Mutex
	var out recorded
	rec, err := m.StartRecording("rec", RecordingOptions{
		ID: "rec-1", Dir: dir, Key: recKey, SegmentDuration: 400 * time.Millisecond,
		OnSegment: func(s SegmentRecord) { mu.Lock(); out.heads = append(out.heads, s.Link); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartRecording("rec", RecordingOptions{ID: "rec-2", Dir: dir, Key: recKey}); ErrorCode(err) != CodeRecordingState {
		t.Errorf("a second recording of the same room: %v, want %s", err, CodeRecordingState)
	}
	time.Sleep(1500 * time.Millisecond)
	out.pliBump = alice.counters.pliSent.Load() - pliBefore
	if err := rec.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Pause(); ErrorCode(err) != CodeRecordingState {
		t.Errorf("pausing twice: %v", err)
	}
	time.Sleep(700 * time.Millisecond)
	if err := rec.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	out.fin, err = rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Resume(); ErrorCode(err) != CodeRecordingState {
		t.Errorf("resuming a stopped recording: %v", err)
	}
	if _, ok := serverRoom(t, m, "rec").Recording(); ok {
		t.Error("the room still says it is recording after Stop")
	}
	out.gap = out.fin.Manifest.Gaps[0]
	return out
}

func serverRoom(t *testing.T, m *Manager, id string) *Room {
	t.Helper()
	r, ok := m.Room(id)
	if !ok {
		t.Fatalf("no room %s", id)
	}
	return r
}

func TestRecordingACall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got := recordCall(t, dir)
	man := got.fin.Manifest
	pub := RecordingSigningKey(recKey).Public().(ed25519.PublicKey)

	if len(man.Tracks) != 4 {
		t.Fatalf("tracks %+v, want alice's and bob's audio and video", man.Tracks)
	}
	if got.pliBump == 0 {
		t.Error("no keyframe request to the publisher when recording started")
	}
	if len(got.heads) != len(man.Segments) || got.heads[len(got.heads)-1] != man.Head {
		t.Errorf("OnSegment reported %d heads, the manifest has %d segments; last head %q, manifest head %q",
			len(got.heads), len(man.Segments), got.heads[len(got.heads)-1], man.Head)
	}
	if len(man.Gaps) != 1 || !man.Gaps[0].Resumed.After(man.Gaps[0].Paused) {
		t.Fatalf("gaps %+v, want one pause", man.Gaps)
	}
	// Nothing recorded during the pause, and the video's RTP clock shows
	// the gap.
	lastBefore := map[string]SegmentRecord{}
	video := map[string]bool{}
	for _, tr := range man.Tracks {
		video[tr.ID] = tr.Kind == "video"
	}
	gapsSeen := 0
	for _, s := range man.Segments {
		// Spans are packet arrival times; packets are single-packet
		// frames here, so none may fall inside the pause.
		before := !s.Start.After(got.gap.Paused)
		if before && s.End.After(got.gap.Paused) {
			t.Errorf("segment %d (%s) runs into the pause: %s–%s, paused %s", s.Index, s.Track, s.Start, s.End, got.gap.Paused)
		}
		if !before && s.Start.Before(got.gap.Resumed) {
			t.Errorf("segment %d (%s) starts inside the pause: %s, resumed %s", s.Index, s.Track, s.Start, got.gap.Resumed)
		}
		if before {
			lastBefore[s.Track] = s
			continue
		}
		if p, ok := lastBefore[s.Track]; ok && video[s.Track] {
			if d := s.FirstRTP - p.LastRTP; d < 90000*4/10 {
				t.Errorf("%s: RTP time across the pause moved %d ticks, want at least 0.4 s", s.Track, d)
			}
			gapsSeen++
		}
		delete(lastBefore, s.Track)
	}
	if gapsSeen != 2 {
		t.Errorf("%d video tracks recorded on both sides of the pause, want 2", gapsSeen)
	}

	if _, err := VerifyRecording(got.fin.Dir, VerifyOptions{PublicKey: pub, Key: recKey, Head: got.heads[len(got.heads)-1]}); err != nil {
		t.Fatalf("an untouched recording does not verify: %v", err)
	}

	for _, tr := range man.Tracks {
		var buf bytes.Buffer
		if _, err := ExportTrack(got.fin.Dir, man, recKey, tr.ID, &buf); err != nil {
			t.Fatalf("export %s: %v", tr.ID, err)
		}
		if sum := sha256.Sum256(buf.Bytes()); hex.EncodeToString(sum[:]) != tr.SHA256 || int64(buf.Len()) != tr.Size {
			t.Errorf("%s: the exported file's hash or size is not the manifest's", tr.ID)
		}
		owner := tr.Participant
		switch tr.Container {
		case "ivf":
			r, hdr, err := ivfreader.NewWith(bytes.NewReader(buf.Bytes()))
			if err != nil || string(hdr.FourCC[:]) != "VP80" {
				t.Fatalf("%s: not an IVF VP8 file: %v %+v", tr.ID, err, hdr)
			}
			frames := 0
			for {
				f, _, err := r.ParseNextFrame()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s: frame %d: %v", tr.ID, frames, err)
				}
				if frames == 0 && f[0]&0x01 != 0 {
					t.Errorf("%s: the first frame is not a keyframe", tr.ID)
				}
				if !bytes.Contains(f, []byte("from="+owner+";")) {
					t.Errorf("%s: frame %d is not %s's", tr.ID, frames, owner)
				}
				frames++
			}
			// 30 fps for about 3 s recorded.
			if frames < 40 {
				t.Errorf("%s: %d frames, want about 90", tr.ID, frames)
			}
		case "ogg":
			r, hdr, err := oggreader.NewWith(bytes.NewReader(buf.Bytes()))
			if err != nil || hdr.SampleRate != 48000 || hdr.Channels != 2 {
				t.Fatalf("%s: not an Ogg Opus file: %v %+v", tr.ID, err, hdr)
			}
			pages, eos := 0, false
			for {
				p, ph, err := r.ParseNextPage()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s: page %d: %v", tr.ID, pages, err)
				}
				if len(p) > 0 && !bytes.Contains(p, []byte("from="+owner+";")) && pages > 1 {
					t.Errorf("%s: page %d is not %s's", tr.ID, pages, owner)
				}
				// Close ends a stream it cannot rewrite with an empty
				// end-of-stream page.
				eos = len(p) == 0 && ph.GranulePosition > 0
				pages++
			}
			if pages < 60 || !eos {
				t.Errorf("%s: %d pages, end of stream %v; want about 150 and an end", tr.ID, pages, eos)
			}
		default:
			t.Errorf("%s: container %q", tr.ID, tr.Container)
		}
	}

	t.Run("tampering", func(t *testing.T) { checkTampering(t, got, pub) })
}

// checkTampering changes copies of the recording and expects each change
// named.
func checkTampering(t *testing.T, got recorded, pub ed25519.PublicKey) {
	man := got.fin.Manifest
	head := got.heads[len(got.heads)-1]
	mid := man.Segments[len(man.Segments)/2]
	last := man.Segments[len(man.Segments)-1]
	cases := []struct {
		name   string
		change func(dir string)
		opts   VerifyOptions
		index  int
		reason string
		noHead bool
	}{
		{"a byte flipped", func(dir string) { flip(t, filepath.Join(dir, mid.File)) }, VerifyOptions{}, mid.Index, "stored file changed", false},
		{"a segment deleted", func(dir string) { rm(t, filepath.Join(dir, mid.File)) }, VerifyOptions{}, mid.Index, "file missing", false},
		{"segments swapped", func(dir string) {
			other := ""
			for _, s := range man.Segments {
				if s.Track == mid.Track && s.Seq == mid.Seq+1 {
					other = s.File
				}
			}
			a, b := filepath.Join(dir, mid.File), filepath.Join(dir, other)
			rm(t, a+".x")
			os.Rename(a, a+".x")
			os.Rename(b, a)
			os.Rename(a+".x", b)
		}, VerifyOptions{}, mid.Index, "stored file changed", false},
		{"the manifest edited", func(dir string) {
			p := filepath.Join(dir, "manifest.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"dropped_packets":0`), []byte(`"dropped_packets":1`), 1), 0o600)
		}, VerifyOptions{}, -1, "signature", false},
		{"cut short with its manifest", func(dir string) {
			rm(t, filepath.Join(dir, "manifest.json"))
			rm(t, filepath.Join(dir, last.File))
			p := filepath.Join(dir, "journal.jsonl")
			b, _ := os.ReadFile(p)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			var keep []string
			for _, l := range lines {
				if !strings.Contains(l, `"link":"`+last.Link+`"`) {
					keep = append(keep, l)
				}
			}
			os.WriteFile(p, []byte(strings.Join(keep, "\n")+"\n"), 0o600)
		}, VerifyOptions{}, len(man.Segments) - 1, "missing at the end", false},
		{"a foreign public key", func(string) {}, VerifyOptions{PublicKey: ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)}, -1, "signature", false},
		{"wrong decryption key", func(string) {}, VerifyOptions{Key: bytes.Repeat([]byte{8}, 32)}, 0, "does not decrypt", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "copy")
			copyDir(t, got.fin.Dir, dir)
			tc.change(dir)
			opts := tc.opts
			if opts.PublicKey == nil {
				opts.PublicKey = pub
			}
			if opts.Key == nil {
				opts.Key = recKey
			}
			opts.Head = head
			_, err := VerifyRecording(dir, opts)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("VerifyRecording = %v, want a VerifyError", err)
			}
			if ve.Index != tc.index || !strings.Contains(ve.Reason, tc.reason) {
				t.Errorf("got %v; want segment %d, reason containing %q", ve, tc.index, tc.reason)
			}
		})
	}
	// Export refuses a changed segment rather than hand it out.
	dir := filepath.Join(t.TempDir(), "copy")
	copyDir(t, got.fin.Dir, dir)
	flip(t, filepath.Join(dir, mid.File))
	if _, err := ExportTrack(dir, man, recKey, mid.Track, io.Discard); err == nil {
		t.Error("ExportTrack exported a changed segment")
	}
}

func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
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

// Tracks published after recording starts are recorded too, and closing
// the room finishes the recording with its manifest.
func TestRecordingFollowsTheRoom(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, nil)
	a := newClient(t, m, "rec2", "alice", clientOptions{audio: true})
	a.join()
	a.startMedia()
	waitFor(t, 10*time.Second, "alice's track", func() bool {
		r, ok := m.Room("rec2")
		return ok && r.Info().PublishedTracks == 1
	})
	rec, err := m.StartRecording("rec2", RecordingOptions{ID: "r2", Dir: t.TempDir(), Key: recKey, SegmentDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := newClient(t, m, "rec2", "bob", clientOptions{audio: true, video: true})
	b.join()
	b.startMedia()
	waitPackets(t, a, "video", 30, 10*time.Second, "bob")
	if err := m.CloseRoom("rec2"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("closing the room did not finish the recording")
	}
	fin, err := rec.Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tr := range fin.Manifest.Tracks {
		ids = append(ids, tr.Participant+":"+tr.Kind)
		if tr.Segments == 0 {
			t.Errorf("%s: nothing recorded", tr.ID)
		}
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "alice:audio,bob:audio,bob:video" {
		t.Errorf("tracks %v", ids)
	}
	pub := RecordingSigningKey(recKey).Public().(ed25519.PublicKey)
	if _, err := VerifyRecording(fin.Dir, VerifyOptions{PublicKey: pub, Key: recKey, Head: fin.Manifest.Head}); err != nil {
		t.Error(err)
	}
}

// A simulcast track is recorded from its top layer, also when it is
// published after the recording began (its layers arriving one by one),
// and frames of several packets are put together whole.
func TestRecordingSimulcastTopLayer(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, nil)
	if _, err := m.OpenRoom("scr", RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := m.StartRecording("scr", RecordingOptions{ID: "sc", Dir: t.TempDir(), Key: recKey, SegmentDuration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Layers of 300, 1200 and 4800 bytes a frame.
	pub := newClient(t, m, "scr", "pub", clientOptions{simulcast: []string{"q", "h", "f"}, frameBytes: 300})
	pub.join()
	pub.startMedia()
	waitFor(t, 10*time.Second, "the track to be recorded", func() bool {
		_, n := rec.Head()
		return n >= 2
	})
	fin, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(fin.Manifest.Tracks) != 1 {
		t.Fatalf("tracks %+v", fin.Manifest.Tracks)
	}
	var buf bytes.Buffer
	if _, err := ExportTrack(fin.Dir, fin.Manifest, recKey, fin.Manifest.Tracks[0].ID, &buf); err != nil {
		t.Fatal(err)
	}
	r, _, err := ivfreader.NewWith(&buf)
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(f, []byte("from=pub;rid=f;")) || len(f) != 4800 {
			t.Fatalf("frame %d: %d bytes, %q…; want whole 4800-byte frames of layer f", frames, len(f), f[3:min(len(f), 30)])
		}
		frames++
	}
	if frames < 10 {
		t.Errorf("%d frames recorded", frames)
	}
}

// A recording whose process died before Stop is finished from its
// journal: the manifest is written and signed for the sealed segments, up
// to the head stored as they were sealed, and it verifies and exports.
func TestRecoverRecording(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, nil)
	a := newClient(t, m, "crash", "alice", clientOptions{audio: true, video: true})
	a.join()
	a.startMedia()
	waitFor(t, 10*time.Second, "alice's tracks", func() bool {
		r, ok := m.Room("crash")
		return ok && r.Info().PublishedTracks == 2
	})
	var mu sync.Mutex
	var heads []string
	dir := t.TempDir()
	rec, err := m.StartRecording("crash", RecordingOptions{ID: "c1", Dir: dir, Key: recKey, SegmentDuration: 200 * time.Millisecond,
		OnSegment: func(s SegmentRecord) { mu.Lock(); heads = append(heads, s.Link); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(900 * time.Millisecond)
	if err := rec.Pause(); err != nil {
		t.Fatal(err)
	}
	// The crash: the folder as it is now, without the manifest Stop writes.
	crashed := filepath.Join(t.TempDir(), "c1")
	copyDir(t, filepath.Join(dir, "c1"), crashed)
	mu.Lock()
	stored := heads[len(heads)-2] // the database missed the last head
	n := len(heads)
	mu.Unlock()
	signer := RecordingSigningKey(recKey)
	if _, err := RecoverRecording(crashed, recKey, signer, strings.Repeat("0", 64)); err == nil {
		t.Error("recovered against a head that is not in the journal")
	}
	fin, err := RecoverRecording(crashed, recKey, signer, stored)
	if err != nil {
		t.Fatal(err)
	}
	man := fin.Manifest
	if len(man.Segments) != n-1 || man.Head != stored || len(man.Tracks) != 2 || len(man.Gaps) != 1 {
		t.Fatalf("recovered %d segments (head %s), %d tracks, %d gaps; want %d up to the stored head, 2, 1",
			len(man.Segments), man.Head, len(man.Tracks), len(man.Gaps), n-1)
	}
	if _, err := VerifyRecording(crashed, VerifyOptions{PublicKey: signer.Public().(ed25519.PublicKey), Key: recKey, Head: stored}); err != nil {
		t.Fatalf("the recovered recording does not verify: %v", err)
	}
	for _, tr := range man.Tracks {
		var buf bytes.Buffer
		if _, err := ExportTrack(crashed, man, recKey, tr.ID, &buf); err != nil {
			t.Fatal(err)
		}
		if hexOf(buf.Bytes()) != tr.SHA256 || (tr.Container != "ivf" && tr.Container != "ogg") {
			t.Errorf("%s: container %q, hash of the export differs from the manifest", tr.ID, tr.Container)
		}
	}
	// Recovering again only verifies.
	again, err := RecoverRecording(crashed, recKey, signer, stored)
	if err != nil || again.ManifestSHA256 != fin.ManifestSHA256 {
		t.Errorf("second recovery: %v", err)
	}
}

func hexOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
