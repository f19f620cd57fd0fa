package media

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// Recording. A room can record every track published in it, each to its
// own file: VP8 to IVF, Opus to Ogg (pion's writers). A track's file is
// written as a byte stream cut into segments at frame boundaries, every
// SegmentDuration; the plaintext of the segments in order is exactly the
// playable file. Each segment is sealed on its own:
//
//   - encrypted at rest with AES-256-GCM under the caller's key, its
//     place (recording, track, sequence number) bound in as associated
//     data, so a segment moved or swapped does not decrypt;
//   - hashed (SHA-256 of the plaintext and of the stored file);
//   - chained: link = SHA-256(previous link ‖ canonical JSON of the
//     segment's record: room, track, first/last RTP timestamp, wall
//     clock, size, hashes), one chain per recording across its tracks;
//   - journaled (journal.jsonl, fsynced) and reported through
//     OnSegment, whose caller stores the chain head, so a truncated
//     recording is detectable even without its manifest.
//
// Stop writes manifest.json (every segment record, the tracks with the
// SHA-256 of each whole file, the pauses) and manifest.sig, its Ed25519
// signature. VerifyRecording names the first broken or missing segment;
// ExportTrack decrypts a track back into its playable file.
//
// Recording starts with a keyframe request for every video track, and
// video is written from a keyframe on (again after a resume). A simulcast
// track is recorded from its highest layer. Packets are written in arrival
// order (a retransmission arriving late is not put back in place), and a
// recorder that falls behind drops packets rather than slow the call;
// drops are counted in the manifest.

// RecordingOptions configure Manager.StartRecording.
type RecordingOptions struct {
	// ID names the recording (letters, digits, '-', '_'); its files go in
	// Dir/ID. Required.
	ID string
	// Dir is the folder recordings are kept in. Required.
	Dir string
	// Key is the 32-byte AES-256 key segments are encrypted with.
	Key []byte
	// SigningKey signs the manifest; default RecordingSigningKey(Key).
	SigningKey ed25519.PrivateKey
	// SegmentDuration is how much of a track one segment holds at most;
	// default 10s.
	SegmentDuration time.Duration
	// OnSegment, if set, is called as each segment is sealed, in chain
	// order, with its record (whose Link is the new chain head). It runs
	// with the recording's chain lock held: keep it short and do not call
	// back into the Recording.
	OnSegment func(SegmentRecord)
}

// SegmentRecord is one sealed segment, as journaled, reported and listed
// in the manifest.
type SegmentRecord struct {
	Index      int       `json:"index"` // position in the recording's chain, from 0
	Recording  string    `json:"recording"`
	Room       string    `json:"room"`
	Track      string    `json:"track"` // "<participant>/<track id>"
	Seq        int       `json:"seq"`   // position within the track, from 0
	File       string    `json:"file"`  // path relative to the recording's folder
	FirstRTP   uint32    `json:"first_rtp"`
	LastRTP    uint32    `json:"last_rtp"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Size       int       `json:"size"`        // plaintext bytes
	SHA256     string    `json:"sha256"`      // of the plaintext
	FileSHA256 string    `json:"file_sha256"` // of the stored, encrypted file
	Prev       string    `json:"prev"`        // the previous link; "" for the first
	Link       string    `json:"link"`
}

// Gap is a pause: nothing was recorded from Paused to Resumed (or to the
// end, when Resumed is zero).
type Gap struct {
	Paused  time.Time `json:"paused"`
	Resumed time.Time `json:"resumed,omitzero"`
}

// RecordedTrack is one track's file in a finished recording.
type RecordedTrack struct {
	ID          string    `json:"id"` // "<participant>/<track id>"
	Participant string    `json:"participant"`
	Kind        string    `json:"kind"`      // audio or video
	Codec       string    `json:"codec"`     // MIME type
	Container   string    `json:"container"` // ivf or ogg
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended"`
	Segments    int       `json:"segments"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // of the whole file ExportTrack gives back
	Dropped     uint64    `json:"dropped_packets"`
}

// Manifest is what Stop writes and signs.
type Manifest struct {
	Version   int             `json:"version"`
	Recording string          `json:"recording"`
	Room      string          `json:"room"`
	Started   time.Time       `json:"started"`
	Stopped   time.Time       `json:"stopped"`
	Tracks    []RecordedTrack `json:"tracks"`
	Segments  []SegmentRecord `json:"segments"`
	Gaps      []Gap           `json:"gaps"`
	Head      string          `json:"head"` // the last segment's link
	PublicKey string          `json:"public_key"`
}

// FinishedRecording is what Stop returns.
type FinishedRecording struct {
	Manifest *Manifest
	// ManifestSHA256 is the SHA-256 of manifest.json as written: what an
	// evidence chain should hold.
	ManifestSHA256 string
	Dir            string
}

// RecordingSigningKey derives the Ed25519 key manifests are signed with
// from the data key, so a deployment has one secret to keep.
func RecordingSigningKey(dataKey []byte) ed25519.PrivateKey {
	seed := sha256.Sum256(append([]byte("tacklegate recording manifest signing v1\x00"), dataKey...))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Recording is a room being recorded.
type Recording struct {
	m      *Manager
	room   *Room
	opts   RecordingOptions
	dir    string
	signer ed25519.PrivateKey
	aead   segmentSealer

	paused atomic.Bool
	// The last pause, in unix nanoseconds of the recording's clock:
	// packets stamped inside [pauseAt, resumeAt) are not written.
	// resumeAt is 0 while paused; pauseAt 0 before any pause.
	pauseAt, resumeAt atomic.Int64

	mu      sync.Mutex // guards what follows, and the chain
	writers []*trackWriter
	names   map[string]int
	gaps    []Gap
	segs    []SegmentRecord
	head    string
	journal *os.File
	started time.Time
	stopped bool
	done    chan struct{}
	result  *FinishedRecording
	err     error
}

func errRecordingState(format string, args ...any) error {
	return errorf("recording", CodeRecordingState, format, args...)
}

// StartRecording records room roomID until Stop (or until the room
// closes). One recording per room at a time.
func (m *Manager) StartRecording(roomID string, opts RecordingOptions) (*Recording, error) {
	if !validID(opts.ID) {
		return nil, errorf("recording", CodeInvalid, "recording id must be 1-64 letters, digits, '.', '_' or '-'")
	}
	if opts.Dir == "" {
		return nil, errorf("recording", CodeInvalid, "no folder for recordings")
	}
	aead, err := newSegmentSealer(opts.Key)
	if err != nil {
		return nil, &Error{Op: "recording", Code: CodeInvalid, Message: "recording key must be 32 bytes", Err: err}
	}
	if opts.SegmentDuration <= 0 {
		opts.SegmentDuration = 10 * time.Second
	}
	signer := opts.SigningKey
	if signer == nil {
		signer = RecordingSigningKey(opts.Key)
	}
	r, ok := m.Room(roomID)
	if !ok {
		return nil, errorf("recording", CodeRoomNotFound, "no open room %s", roomID)
	}
	dir := filepath.Join(opts.Dir, opts.ID)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, internal("recording", "cannot create the recordings folder", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errRecordingState("recording %s exists already", opts.ID)
		}
		return nil, internal("recording", "cannot create the recording's folder", err)
	}
	j, err := os.OpenFile(filepath.Join(dir, "journal.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, internal("recording", "cannot create the recording's journal", err)
	}
	rec := &Recording{
		m: m, room: r, opts: opts, dir: dir, signer: signer, aead: aead,
		names: map[string]int{}, journal: j, started: m.cfg.Now().UTC(), done: make(chan struct{}),
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = j.Close()
		return nil, errorf("recording", CodeRoomNotFound, "no open room %s", roomID)
	}
	if r.rec != nil {
		r.mu.Unlock()
		_ = j.Close()
		_ = os.RemoveAll(dir)
		return nil, errRecordingState("room %s is being recorded already", roomID)
	}
	r.rec = rec
	tracks := append([]*publishedTrack(nil), r.tracks...)
	r.mu.Unlock()
	r.log.Info("recording started", "recording", opts.ID)
	for _, t := range tracks {
		rec.addTrack(t)
	}
	return rec, nil
}

// Recording returns the room's recording in progress, if any.
func (r *Room) Recording() (*Recording, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec, r.rec != nil
}

// ID is the recording's id.
func (rec *Recording) ID() string { return rec.opts.ID }

// Dir is the folder the recording's files are in.
func (rec *Recording) Dir() string { return rec.dir }

// Paused reports whether the recording is paused.
func (rec *Recording) Paused() bool { return rec.paused.Load() }

// Head is the chain head: the last sealed segment's link.
func (rec *Recording) Head() (head string, segments int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.head, len(rec.segs)
}

// Pause stops writing until Resume. Each track's open segment is sealed
// first, so what was recorded before the pause is on disk and chained
// when Pause returns.
func (rec *Recording) Pause() error {
	rec.mu.Lock()
	if rec.stopped {
		rec.mu.Unlock()
		return errRecordingState("the recording has stopped")
	}
	if rec.paused.Load() {
		rec.mu.Unlock()
		return errRecordingState("the recording is paused already")
	}
	rec.paused.Store(true)
	now := rec.m.cfg.Now().UTC()
	rec.resumeAt.Store(0)
	rec.pauseAt.Store(now.UnixNano())
	rec.gaps = append(rec.gaps, Gap{Paused: now})
	writers := append([]*trackWriter(nil), rec.writers...)
	rec.mu.Unlock()
	rec.journalEntry(map[string]any{"kind": "pause", "at": now})
	for _, w := range writers {
		w.do(w.sealAtFrameEnd)
	}
	rec.room.log.Info("recording paused", "recording", rec.opts.ID)
	return nil
}

// Resume continues a paused recording. Video resumes at the next
// keyframe, which is requested at once.
func (rec *Recording) Resume() error {
	rec.mu.Lock()
	if rec.stopped {
		rec.mu.Unlock()
		return errRecordingState("the recording has stopped")
	}
	if !rec.paused.Load() {
		rec.mu.Unlock()
		return errRecordingState("the recording is not paused")
	}
	now := rec.m.cfg.Now().UTC()
	rec.resumeAt.Store(now.UnixNano())
	rec.gaps[len(rec.gaps)-1].Resumed = now
	rec.paused.Store(false)
	writers := append([]*trackWriter(nil), rec.writers...)
	rec.mu.Unlock()
	rec.journalEntry(map[string]any{"kind": "resume", "at": now})
	for _, w := range writers {
		w.do(w.requestKeyframe)
	}
	rec.room.log.Info("recording resumed", "recording", rec.opts.ID)
	return nil
}

// Stop ends the recording: every track's last segment is sealed, and the
// manifest written and signed. Calling it again returns the same result.
func (rec *Recording) Stop() (*FinishedRecording, error) {
	rec.mu.Lock()
	if rec.stopped {
		rec.mu.Unlock()
		<-rec.done
		return rec.result, rec.err
	}
	rec.stopped = true
	writers := append([]*trackWriter(nil), rec.writers...)
	rec.mu.Unlock()

	r := rec.room
	r.mu.Lock()
	if r.rec == rec {
		r.rec = nil
	}
	r.mu.Unlock()
	for _, w := range writers {
		w.t.rec.CompareAndSwap(w, nil)
		w.stop()
	}
	rec.result, rec.err = rec.finish()
	close(rec.done)
	if rec.err != nil {
		r.log.Error("recording did not finish cleanly", "recording", rec.opts.ID, "err", rec.err)
	} else {
		r.log.Info("recording stopped", "recording", rec.opts.ID, "segments", len(rec.result.Manifest.Segments))
	}
	return rec.result, rec.err
}

// Done is closed once the recording has stopped and its manifest is
// written (Stop, or the room closing).
func (rec *Recording) Done() <-chan struct{} { return rec.done }

// Result is Stop's result, once Done is closed.
func (rec *Recording) Result() (*FinishedRecording, error) {
	<-rec.done
	return rec.result, rec.err
}

func (rec *Recording) finish() (*FinishedRecording, error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	now := rec.m.cfg.Now().UTC()
	if n := len(rec.gaps); n > 0 && rec.gaps[n-1].Resumed.IsZero() {
		rec.gaps[n-1].Resumed = now
	}
	man := &Manifest{
		Version: 1, Recording: rec.opts.ID, Room: rec.room.id, Started: rec.started, Stopped: now,
		Segments: rec.segs, Gaps: rec.gaps, Head: rec.head,
		PublicKey: hex.EncodeToString(rec.signer.Public().(ed25519.PublicKey)),
	}
	if man.Segments == nil {
		man.Segments = []SegmentRecord{}
	}
	if man.Gaps == nil {
		man.Gaps = []Gap{}
	}
	man.Tracks = []RecordedTrack{}
	for _, w := range rec.writers {
		man.Tracks = append(man.Tracks, w.summary())
	}
	sort.Slice(man.Tracks, func(i, j int) bool { return man.Tracks[i].ID < man.Tracks[j].ID })
	body, err := canonicalJSON(man)
	if err != nil {
		return nil, internal("recording", "cannot write the manifest", err)
	}
	body = append(body, '\n')
	sig := ed25519.Sign(rec.signer, body)
	if err := writeFileSync(filepath.Join(rec.dir, "manifest.json"), body); err != nil {
		return nil, internal("recording", "cannot write the manifest", err)
	}
	if err := writeFileSync(filepath.Join(rec.dir, "manifest.sig"), []byte(hex.EncodeToString(sig)+"\n")); err != nil {
		return nil, internal("recording", "cannot write the manifest signature", err)
	}
	_ = rec.journal.Close()
	sum := sha256.Sum256(body)
	return &FinishedRecording{Manifest: man, ManifestSHA256: hex.EncodeToString(sum[:]), Dir: rec.dir}, nil
}

// addTrack starts recording t. Called for the room's tracks at start and
// for each track published afterwards.
func (rec *Recording) addTrack(t *publishedTrack) {
	if t.kind == webrtc.RTPCodecTypeVideo && !strings.EqualFold(t.codec.MimeType, webrtc.MimeTypeVP8) ||
		t.kind == webrtc.RTPCodecTypeAudio && !strings.EqualFold(t.codec.MimeType, webrtc.MimeTypeOpus) {
		return
	}
	rec.mu.Lock()
	if rec.stopped {
		rec.mu.Unlock()
		return
	}
	name := t.pub.info.ID + "/" + t.id
	// A participant who leaves and comes back republishes under the same
	// track id: the new file gets its own name.
	if n := rec.names[name]; n > 0 {
		rec.names[name] = n + 1
		name = fmt.Sprintf("%s~%d", name, n)
	} else {
		rec.names[name] = 1
	}
	w := newTrackWriter(rec, t, name)
	rec.writers = append(rec.writers, w)
	rec.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(rec.dir, filepath.FromSlash(name)), 0o700); err != nil {
		w.fail(err)
	}
	if !rec.m.spawn(w.run) {
		close(w.stopped)
		return
	}
	t.rec.Store(w)
	w.requestKeyframe()
}

// seal encrypts and stores one segment and appends it to the chain.
func (rec *Recording) seal(w *trackWriter, plain []byte, first, last uint32, start, end time.Time) error {
	seq := w.seq
	file := fmt.Sprintf("%s/%06d.seg", w.name, seq)
	sealed := rec.aead.seal(plain, segmentAAD(rec.opts.ID, w.name, seq))
	if err := writeFileSync(filepath.Join(rec.dir, filepath.FromSlash(file)), sealed); err != nil {
		return err
	}
	ps, fs := sha256.Sum256(plain), sha256.Sum256(sealed)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s := SegmentRecord{
		Index: len(rec.segs), Recording: rec.opts.ID, Room: rec.room.id, Track: w.name, Seq: seq, File: file,
		FirstRTP: first, LastRTP: last, Start: start.UTC(), End: end.UTC(), Size: len(plain),
		SHA256: hex.EncodeToString(ps[:]), FileSHA256: hex.EncodeToString(fs[:]), Prev: rec.head,
	}
	link, err := segmentLink(s)
	if err != nil {
		return err
	}
	s.Link = link
	line, err := canonicalJSON(map[string]any{"kind": "segment", "segment": s})
	if err != nil {
		return err
	}
	if _, err := rec.journal.Write(append(line, '\n')); err != nil {
		return err
	}
	if err := rec.journal.Sync(); err != nil {
		return err
	}
	rec.segs = append(rec.segs, s)
	rec.head = link
	if rec.opts.OnSegment != nil {
		rec.opts.OnSegment(s)
	}
	return nil
}

func (rec *Recording) journalEntry(v map[string]any) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	line, err := canonicalJSON(v)
	if err == nil {
		_, err = rec.journal.Write(append(line, '\n'))
	}
	if err != nil {
		rec.room.log.Warn("recording journal write failed", "recording", rec.opts.ID, "err", err)
	}
}

// segmentLink is SHA-256(prev ‖ 0x00 ‖ canonical JSON of s without Link).
func segmentLink(s SegmentRecord) (string, error) {
	s.Link = ""
	b, err := canonicalJSON(s)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(s.Prev))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// recPacket is one packet handed from the forwarding loop to a writer.
type recPacket struct {
	l   *layer
	raw []byte
	at  time.Time
}

// trackWriter records one track. The forwarding loop hands it packets
// through a buffered channel and never waits; everything else happens on
// its own goroutine.
type trackWriter struct {
	rec  *Recording
	t    *publishedTrack
	name string
	// l is the layer recorded: for simulcast the one with the highest
	// bitrate, chosen again until the first frame is written (a track
	// published during the recording has its layers arrive one by one).
	l atomic.Pointer[layer]

	in      chan recPacket
	ctl     chan func()
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once
	dropped atomic.Uint64

	// Writer goroutine state.
	video    bool
	buf      bytes.Buffer
	ivf      *ivfwriter.IVFWriter
	ogg      *oggwriter.Writer
	oggTrack *oggwriter.Track
	waitKey  bool // video: write nothing until a keyframe starts
	needKey  bool // video: wait for a keyframe after the current frame
	inFrame  bool // a video frame is part-written
	sealNext bool // seal at the end of the current frame
	segStart time.Time
	first    uint32
	last     uint32
	lastAt   time.Time // arrival of the last packet written
	hasData  bool
	seq      int
	total    hash.Hash
	size     int64
	started  time.Time
	ended    time.Time
	err      error
}

func newTrackWriter(rec *Recording, t *publishedTrack, name string) *trackWriter {
	w := &trackWriter{
		rec: rec, t: t, name: name,
		in: make(chan recPacket, 1024), ctl: make(chan func()), quit: make(chan struct{}), stopped: make(chan struct{}),
		video: t.kind == webrtc.RTPCodecTypeVideo, total: sha256.New(), started: rec.m.cfg.Now().UTC(),
	}
	w.waitKey = w.video
	w.pickLayer()
	return w
}

// pickLayer points w at the track's highest-bitrate layer (the last to
// arrive, among equals: browsers send simulcast layers low to high).
func (w *trackWriter) pickLayer() {
	var best *layer
	for _, l := range w.t.layerList() {
		if best == nil || l.bitrate.Load() >= best.bitrate.Load() {
			best = l
		}
	}
	if best != nil {
		w.l.Store(best)
	}
}

// push hands w a packet of layer l. Forwarding loop only: never blocks.
func (w *trackWriter) push(l *layer, raw []byte) {
	if cur := w.l.Load(); l != cur && (cur != nil || !w.l.CompareAndSwap(nil, l)) {
		return
	}
	select {
	case w.in <- recPacket{l: l, raw: append([]byte(nil), raw...), at: w.rec.m.cfg.Now()}:
	default:
		w.dropped.Add(1)
	}
}

// do runs f on the writer's goroutine and waits for it.
func (w *trackWriter) do(f func()) {
	done := make(chan struct{})
	select {
	case w.ctl <- func() { f(); close(done) }:
		<-done
	case <-w.stopped:
	}
}

func (w *trackWriter) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.stopped
}

func (w *trackWriter) fail(err error) {
	if w.err == nil {
		w.err = err
		w.rec.room.log.Error("recording a track failed; it is no longer recorded", "recording", w.rec.opts.ID, "track", w.name, "err", err)
	}
}

func (w *trackWriter) requestKeyframe() {
	if l := w.l.Load(); w.video && l != nil {
		l.requestKeyframe()
	}
}

func (w *trackWriter) run() {
	defer close(w.stopped)
	// A keyframe request may be lost, or swallowed by the publisher-side
	// throttle because somebody else asked just before recording began:
	// ask again until one comes.
	tick := time.NewTicker(keyframeThrottle / 2)
	defer tick.Stop()
	for {
		select {
		case p := <-w.in:
			w.write(p)
		case f := <-w.ctl:
			f()
		case <-tick.C:
			if w.waitKey && !w.inPause(w.rec.m.cfg.Now()) {
				if w.ivf == nil && w.t.simulcast {
					w.pickLayer()
				}
				w.requestKeyframe()
			}
		case <-w.quit:
			for {
				select {
				case p := <-w.in:
					w.write(p)
					continue
				default:
				}
				break
			}
			w.close()
			return
		}
	}
}

func (w *trackWriter) write(p recPacket) {
	if w.err != nil {
		return
	}
	if w.video && w.ivf == nil && w.t.simulcast {
		// Nothing written yet: settle on the top layer first. Its
		// siblings may still be arriving (a track published just now),
		// so the first half second is only for looking.
		if p.at.Sub(w.started) < keyframeThrottle {
			return
		}
		if w.pickLayer(); p.l != w.l.Load() {
			return
		}
	}
	if p.l != w.l.Load() {
		return // queued before the layer was chosen again
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(p.raw); err != nil || len(pkt.Payload) == 0 {
		return
	}
	if !w.inFrame && w.inPause(p.at) {
		return
	}
	if !w.inFrame && w.needKey {
		w.waitKey, w.needKey = w.video, false
	}
	if w.video && w.waitKey {
		if !isVP8Keyframe(pkt.Payload) {
			return
		}
		w.waitKey = false
	}
	if err := w.open(); err != nil {
		w.fail(err)
		return
	}
	if !w.hasData {
		w.first, w.segStart, w.hasData = pkt.Timestamp, p.at, true
	}
	w.last = pkt.Timestamp
	w.lastAt = p.at
	w.ended = p.at.UTC()
	var err error
	if w.video {
		err = w.ivf.WriteRTP(&pkt)
		w.inFrame = !pkt.Marker
	} else {
		err = w.oggTrack.WriteRTP(&pkt)
	}
	if err != nil {
		// A malformed payload: skip it, as a decoder would.
		return
	}
	if w.inFrame {
		return
	}
	if w.sealNext || p.at.Sub(w.segStart) >= w.rec.opts.SegmentDuration {
		w.sealNext = false
		w.sealSegment()
	}
}

// open makes the file writer on the first packet written, so its header
// starts the first segment.
func (w *trackWriter) open() error {
	var err error
	switch {
	case w.video && w.ivf == nil:
		w.ivf, err = ivfwriter.NewWith(&w.buf, ivfwriter.WithCodec(webrtc.MimeTypeVP8),
			ivfwriter.WithFrameRate(1, 90000), ivfwriter.WithDirectPTS())
	case !w.video && w.ogg == nil:
		if w.ogg, err = oggwriter.NewWriter(&w.buf, oggwriter.WithSampleRate(48000), oggwriter.WithChannelCount(2)); err == nil {
			w.oggTrack, err = w.ogg.NewTrack(w.l.Load().ssrc)
		}
	}
	return err
}

// sealAtFrameEnd seals now, or after the frame being written, for a
// pause. Video after the pause starts again at a keyframe: the frames
// before it refer to pictures not recorded.
func (w *trackWriter) sealAtFrameEnd() {
	w.needKey = true
	if w.inFrame {
		w.sealNext = true
		return
	}
	w.sealSegment()
}

// inPause reports whether a packet stamped at falls in the last pause.
func (w *trackWriter) inPause(at time.Time) bool {
	pa := w.rec.pauseAt.Load()
	if pa == 0 {
		return false
	}
	ra, n := w.rec.resumeAt.Load(), at.UnixNano()
	return n >= pa && (ra == 0 || n < ra)
}

// sealSegment seals what the buffer holds. Its span is from its first
// packet's arrival to its last's.
func (w *trackWriter) sealSegment() {
	if w.buf.Len() == 0 || w.err != nil {
		return
	}
	plain := w.buf.Bytes()
	if err := w.rec.seal(w, plain, w.first, w.last, w.segStart, w.lastAt); err != nil {
		w.fail(err)
		return
	}
	w.total.Write(plain)
	w.size += int64(len(plain))
	w.seq++
	w.buf.Reset()
	w.hasData = false
}

func (w *trackWriter) close() {
	if w.ogg != nil {
		_ = w.ogg.Close() // the end-of-stream page
	}
	// A part-written frame is dropped with the rest of this writer's state:
	// its bytes are not in the buffer until complete.
	w.sealSegment()
	w.ended = w.rec.m.cfg.Now().UTC()
}

func (w *trackWriter) summary() RecordedTrack {
	<-w.stopped
	container := "ogg"
	if w.video {
		container = "ivf"
	}
	return RecordedTrack{
		ID: w.name, Participant: w.t.pub.info.ID, Kind: w.t.kind.String(), Codec: w.t.codec.MimeType, Container: container,
		Started: w.started, Ended: w.ended, Segments: w.seq, Size: w.size,
		SHA256: hex.EncodeToString(w.total.Sum(nil)), Dropped: w.dropped.Load(),
	}
}

// writeFileSync writes a file whole and durably: a temporary file, fsync,
// rename, so a crash leaves either nothing or the complete file.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
