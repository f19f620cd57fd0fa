package gateway

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/media"
	"github.com/tacklegate/tacklegate/rental"
)

// Recordings: staff record a room (a pickup or return inspection over
// video); media writes the tracks as encrypted, hash-chained segments
// (media/record.go) and this side keeps the chain head in the database as
// each segment is sealed, chains the finished recording into its order's
// evidence, and gives staff and the owner the files back, verified first.

// Recordings configures the recording routes.
type Recordings struct {
	Manager *media.Manager
	DB      *store.DB
	// Dir is where recordings are kept (TACKLEGATE_RECORDINGS_DIR).
	Dir string
	// DataKey is the data key; recordings are encrypted with a key
	// derived from it and their manifests signed with one derived from
	// that.
	DataKey []byte
	// SegmentDuration is passed to media; default media's (10 s).
	SegmentDuration time.Duration
	Now             func() time.Time
	Logger          *slog.Logger

	key  []byte
	pub  ed25519.PublicKey
	log  *slog.Logger
	mu   sync.Mutex
	live map[int64]*liveRecording
	wg   sync.WaitGroup
}

type liveRecording struct {
	rec      *media.Recording
	row      *store.Recording
	finished chan struct{} // closed when the database row is final
	pausedAt time.Time     // while paused
	pausedMS int64
}

// RecordingKey derives the key recordings are encrypted with from the
// data key, so the two are never the same key.
func RecordingKey(dataKey []byte) []byte {
	k := sha256.Sum256(append([]byte("tacklegate recordings v1\x00"), dataKey...))
	return k[:]
}

// MountRecordings mounts the recording routes, after finishing the
// recordings an earlier process left live (see recoverLeftovers). The
// folder is made when the first recording starts.
func (s *Server) MountRecordings(ctx context.Context, r *Recordings) error {
	if s.auth == nil {
		panic("gateway: MountRecordings needs Options.Identity (staff login)")
	}
	if r.Logger == nil {
		r.Logger = s.logger
	}
	if err := r.setup(ctx); err != nil {
		return err
	}
	s.api("POST", "/staff/rooms/:id/recording", staffOnly, r.control)
	s.api("GET", "/recordings", staffOnly, r.list)
	s.api("GET", "/recordings/:id", staffOnly, r.get)
	s.api("GET", "/recordings/:id/download", staffOnly, r.download)
	return nil
}

// setup derives the keys and finishes what an earlier process left.
func (r *Recordings) setup(ctx context.Context) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if len(r.DataKey) != 32 {
		return rental.Errorf("gateway.MountRecordings", rental.KindInternal, "recordings need the 32-byte data key")
	}
	r.log = r.Logger.With("component", "recordings")
	r.key = RecordingKey(r.DataKey)
	r.pub = media.RecordingSigningKey(r.key).Public().(ed25519.PublicKey)
	r.live = map[int64]*liveRecording{}
	return r.recoverLeftovers(ctx)
}

// Close stops every recording in progress and waits until each is
// finished in the database. Call it before closing the media Manager and
// the database.
func (r *Recordings) Close() {
	r.mu.Lock()
	var live []*liveRecording
	for _, l := range r.live {
		live = append(live, l)
	}
	r.mu.Unlock()
	for _, l := range live {
		_, _ = l.rec.Stop()
	}
	r.wg.Wait()
}

// control starts, pauses, resumes or stops the room's recording.
func (r *Recordings) control(c *fiber.Ctx) error {
	const op = "recordings.control"
	room := string([]byte(c.Params("id")))
	var in struct {
		Action  string         `json:"action"`
		OrderID rental.OrderID `json:"order_id"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	switch in.Action {
	case "start":
		return r.start(c, room, in.OrderID)
	case "pause", "resume", "stop":
	default:
		return rental.Errorf(op, rental.KindInvalid, "action 应为 start、pause、resume 或 stop (action must be start, pause, resume or stop)")
	}
	ctx := c.UserContext()
	row, err := r.DB.LiveRecording(ctx, room)
	if rental.ErrorKind(err) == rental.KindNotFound {
		return rental.Errorf(op, rental.KindConflict, "这个房间没有在录像 (the room is not being recorded)")
	} else if err != nil {
		return err
	}
	r.mu.Lock()
	l := r.live[row.ID]
	r.mu.Unlock()
	if l == nil {
		return rental.Errorf(op, rental.KindConflict, "录像不在本实例上进行 (the recording runs on another instance)")
	}
	switch in.Action {
	case "pause":
		if err := l.rec.Pause(); err != nil {
			return mediaState(op, err)
		}
		r.mu.Lock()
		l.pausedAt = r.Now()
		ms := l.pausedMS
		r.mu.Unlock()
		if err := r.DB.SetRecordingState(ctx, row.ID, store.RecordingPaused, ms); err != nil {
			return err
		}
	case "resume":
		if err := l.rec.Resume(); err != nil {
			return mediaState(op, err)
		}
		r.mu.Lock()
		l.pausedMS += r.Now().Sub(l.pausedAt).Milliseconds()
		ms := l.pausedMS
		r.mu.Unlock()
		if err := r.DB.SetRecordingState(ctx, row.ID, store.RecordingLive, ms); err != nil {
			return err
		}
	case "stop":
		if _, err := l.rec.Stop(); err != nil {
			r.log.Error("recording stopped with an error", "recording", row.ID, "err", err)
		}
		select {
		case <-l.finished:
		case <-time.After(30 * time.Second):
			return rental.Errorf(op, rental.KindUnavailable, "录像正在保存，请稍后查看 (the recording is still being saved)")
		}
	}
	Logger(c).Info("recording "+in.Action, "recording", row.ID, "room", room)
	return r.answer(c, row.ID)
}

// mediaState turns media's recording-state errors into conflicts.
func mediaState(op string, err error) error {
	var me *media.Error
	if errors.As(err, &me) && me.Code == media.CodeRecordingState {
		return rental.Wrap(op, rental.KindConflict, "录像状态不允许此操作 ("+me.Message+")", err)
	}
	return err
}

func (r *Recordings) start(c *fiber.Ctx, room string, order rental.OrderID) error {
	const op = "recordings.start"
	ctx := c.UserContext()
	if _, ok := r.Manager.Room(room); !ok {
		return rental.Errorf(op, rental.KindNotFound, "视频通话已结束或不存在 (no such room)")
	}
	var b [9]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	row := &store.Recording{RoomID: room, Folder: "rec-" + hex.EncodeToString(b[:]), OrderID: order,
		StartedBy: actor(caller(c)), StartedAt: r.Now()}
	if err := r.DB.CreateRecording(ctx, row); err != nil {
		return err
	}
	id := row.ID
	rec, err := r.Manager.StartRecording(room, media.RecordingOptions{
		ID: row.Folder, Dir: r.Dir, Key: r.key, SegmentDuration: r.SegmentDuration,
		OnSegment: func(s media.SegmentRecord) {
			// Stored as each segment is sealed: the recording on disk
			// can then never end before this head unnoticed.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.DB.RecordingHead(sctx, id, s.Link, s.Index+1); err != nil {
				r.log.Error("cannot store a recording's chain head", "recording", id, "segment", s.Index, "err", err)
			}
		},
	})
	if err != nil {
		_ = r.DB.FailRecording(context.Background(), id, store.RecordingFailed, err.Error(), r.Now())
		var me *media.Error
		if errors.As(err, &me) && me.Code == media.CodeRoomNotFound {
			return rental.Wrap(op, rental.KindNotFound, "视频通话已结束或不存在 (no such room)", err)
		}
		return mediaState(op, err)
	}
	l := &liveRecording{rec: rec, row: row, finished: make(chan struct{})}
	r.mu.Lock()
	r.live[id] = l
	r.mu.Unlock()
	r.wg.Add(1)
	go r.finishWhenDone(l)
	Logger(c).Info("recording start", "recording", id, "room", room, "order", order)
	return r.answer(c.Status(fiber.StatusCreated), id)
}

// finishWhenDone waits for the recording to stop (the stop action, the
// room closing, shutdown) and makes the database row final: stopped with
// its manifest and files, the order's evidence chained, the call marked
// recorded.
func (r *Recordings) finishWhenDone(l *liveRecording) {
	defer r.wg.Done()
	defer close(l.finished)
	defer func() {
		r.mu.Lock()
		delete(r.live, l.row.ID)
		r.mu.Unlock()
	}()
	<-l.rec.Done()
	fin, err := l.rec.Result()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err != nil {
		r.log.Error("recording could not be finished", "recording", l.row.ID, "err", err)
		_ = r.DB.FailRecording(ctx, l.row.ID, store.RecordingFailed, err.Error(), r.Now())
		return
	}
	r.mu.Lock()
	paused := l.pausedMS
	if !l.pausedAt.IsZero() && l.rec.Paused() {
		paused += r.Now().Sub(l.pausedAt).Milliseconds()
	}
	r.mu.Unlock()
	r.store(ctx, l.row, fin, paused, "")
}

// store makes a finished recording's row final: stopped with its
// manifest and files, the order's evidence chained, the call marked
// recorded. note, if set, is added to the evidence item's name.
func (r *Recordings) store(ctx context.Context, row *store.Recording, fin *media.FinishedRecording, paused int64, note string) {
	man := fin.Manifest
	done := store.RecordingDone{StoppedAt: man.Stopped, PausedMS: paused, Segments: len(man.Segments), Head: man.Head,
		ManifestSHA256: fin.ManifestSHA256, Tracks: []store.RecordingTrack{}}
	for _, t := range man.Tracks {
		done.SizeBytes += t.Size
		done.Tracks = append(done.Tracks, store.RecordingTrack{ID: t.ID, Kind: t.Kind, Container: t.Container, Size: t.Size, SHA256: t.SHA256})
	}
	if row.OrderID != 0 {
		summary, err := json.Marshal(recordingEvidence{
			Recording: row.ID, Room: man.Room, Folder: row.Folder, Started: man.Started, Stopped: man.Stopped,
			ManifestSHA256: fin.ManifestSHA256, Head: man.Head, Segments: len(man.Segments), Gaps: man.Gaps, Tracks: done.Tracks,
			SigningKey: man.PublicKey,
		})
		if err != nil {
			r.log.Error("cannot describe a recording for the evidence chain", "recording", row.ID, "err", err)
		} else {
			done.Evidence = &rental.Evidence{Kind: rental.EvidenceRecording, MediaType: "application/json",
				Name: fmt.Sprintf("视频录像 %s (%d 个文件)%s", man.Started.In(rental.Shanghai()).Format("2006-01-02 15:04"), len(done.Tracks), note),
				Ref:  "recording:" + strconv.FormatInt(row.ID, 10), Actor: row.StartedBy, CreatedAt: r.Now(), Content: summary}
		}
	}
	if _, err := r.DB.FinishRecording(ctx, row.ID, done); err != nil {
		r.log.Error("cannot store a finished recording", "recording", row.ID, "err", err)
		_ = r.DB.FailRecording(ctx, row.ID, store.RecordingFailed, "finished on disk but not stored: "+err.Error(), r.Now())
		return
	}
	r.log.Info("recording stored", "recording", row.ID, "room", man.Room, "segments", len(man.Segments), "order", row.OrderID)
}

// recoverLeftovers finishes the recordings an earlier process left live
// (it died, or was killed before its shutdown finished them): each is
// finished from its journal up to the chain head stored here
// (media.RecoverRecording) and then stored like any stopped recording,
// its evidence included. What that process still held in memory, up to
// one segment per track, is lost. One that cannot be recovered is marked
// interrupted with the reason; its files stay for inspection.
func (r *Recordings) recoverLeftovers(ctx context.Context) error {
	live, err := r.DB.LiveRecordings(ctx)
	if err != nil {
		return err
	}
	signer := media.RecordingSigningKey(r.key)
	for i := range live {
		row := &live[i]
		fin, err := media.RecoverRecording(filepath.Join(r.Dir, row.Folder), r.key, signer, row.Head)
		if err != nil {
			r.log.Error("a recording left by an earlier process cannot be recovered", "recording", row.ID, "err", err)
			if ferr := r.DB.FailRecording(ctx, row.ID, store.RecordingInterrupted,
				"the process stopped while recording; not recovered: "+verifyMessage(err), r.Now()); ferr != nil {
				return ferr
			}
			continue
		}
		r.log.Warn("recovered a recording left by an earlier process", "recording", row.ID, "segments", len(fin.Manifest.Segments))
		r.store(ctx, row, fin, row.PausedMS, "，进程中断后恢复 (recovered after a restart)")
	}
	return nil
}

// recordingEvidence is the content of a recording's evidence item: every
// hash a third party needs to check the files against the order's chain.
type recordingEvidence struct {
	Recording      int64                  `json:"recording"`
	Room           string                 `json:"room"`
	Folder         string                 `json:"folder"`
	Started        time.Time              `json:"started"`
	Stopped        time.Time              `json:"stopped"`
	ManifestSHA256 string                 `json:"manifest_sha256"`
	Head           string                 `json:"chain_head"`
	Segments       int                    `json:"segments"`
	Gaps           []media.Gap            `json:"pauses"`
	Tracks         []store.RecordingTrack `json:"tracks"`
	SigningKey     string                 `json:"manifest_signing_key"`
}

type recordingView struct {
	ID             int64                  `json:"id"`
	RoomID         string                 `json:"room_id"`
	OrderID        rental.OrderID         `json:"order_id,omitempty"`
	State          string                 `json:"state"`
	StartedBy      rental.Actor           `json:"started_by"`
	StartedAt      time.Time              `json:"started_at"`
	StoppedAt      time.Time              `json:"stopped_at,omitzero"`
	PausedMS       int64                  `json:"paused_ms"`
	Segments       int                    `json:"segments"`
	ChainHead      string                 `json:"chain_head"`
	ManifestSHA256 string                 `json:"manifest_sha256,omitempty"`
	SizeBytes      int64                  `json:"size_bytes"`
	Tracks         []store.RecordingTrack `json:"tracks"`
	EvidenceID     rental.EvidenceID      `json:"evidence_id,omitempty"`
	Error          string                 `json:"error,omitempty"`
	Download       string                 `json:"download,omitempty"`
}

func viewOf(rec *store.Recording) recordingView {
	v := recordingView{ID: rec.ID, RoomID: rec.RoomID, OrderID: rec.OrderID, State: rec.State, StartedBy: rec.StartedBy,
		StartedAt: shanghaiTime(rec.StartedAt), StoppedAt: shanghaiTime(rec.StoppedAt), PausedMS: rec.PausedMS,
		Segments: rec.Segments, ChainHead: rec.Head, ManifestSHA256: rec.ManifestSHA256, SizeBytes: rec.SizeBytes,
		Tracks: rec.Tracks, EvidenceID: rec.EvidenceID, Error: rec.Error}
	if rec.State == store.RecordingStopped {
		v.Download = "/api/v1/recordings/" + strconv.FormatInt(rec.ID, 10) + "/download"
	}
	return v
}

func (r *Recordings) answer(c *fiber.Ctx, id int64) error {
	rec, err := r.DB.RecordingByID(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(viewOf(rec))
}

// list pages through recordings, newest first, optionally of one order.
func (r *Recordings) list(c *fiber.Ctx) error {
	var order rental.OrderID
	if v := c.Query("order_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return rental.Errorf("recordings.list", rental.KindInvalid, "order_id 无效 (bad order_id %q)", v)
		}
		order = rental.OrderID(n)
	}
	cursor, err := cursorParam(c)
	if err != nil {
		return err
	}
	recs, next, err := r.DB.Recordings(c.UserContext(), order, cursor, limitParam(c, 20, 100))
	if err != nil {
		return err
	}
	out := make([]recordingView, len(recs))
	for i := range recs {
		out[i] = viewOf(&recs[i])
	}
	nextCursor := ""
	if next > 0 {
		nextCursor = strconv.FormatInt(next, 10)
	}
	return c.JSON(fiber.Map{"recordings": out, "next_cursor": nextCursor})
}

func (r *Recordings) get(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	return r.answer(c, id)
}

// download verifies a stopped recording against its manifest, signature
// and the chain head stored here, then sends one track's playable file
// (?track=ID) or a zip of every track with the manifest and its signature.
// A recording that fails verification is not handed out: the answer names
// the first broken or missing segment.
func (r *Recordings) download(c *fiber.Ctx) error {
	const op = "recordings.download"
	id, err := paramID(c)
	if err != nil {
		return err
	}
	rec, err := r.DB.RecordingByID(c.UserContext(), id)
	if err != nil {
		return err
	}
	if rec.State != store.RecordingStopped {
		return rental.Errorf(op, rental.KindConflict, "录像尚未结束，不能下载 (the recording is %s, not stopped)", rec.State)
	}
	dir := filepath.Join(r.Dir, rec.Folder)
	man, err := media.VerifyRecording(dir, media.VerifyOptions{PublicKey: r.pub, Key: r.key, Head: rec.Head})
	if err == nil {
		sum, serr := fileSHA256(filepath.Join(dir, "manifest.json"))
		if serr != nil || sum != rec.ManifestSHA256 {
			err = &media.VerifyError{Index: -1, Reason: "manifest.json is not the one recorded when the recording stopped"}
		}
	}
	if err != nil {
		Logger(c).Error("a recording failed verification", "recording", id, "err", err)
		return rental.Wrap(op, rental.KindConflict, "录像文件已被改动或缺失，无法下载："+verifyMessage(err)+" (the recording failed verification)", err)
	}
	Logger(c).Info("recording downloaded", "recording", id, "track", c.Query("track"))
	if track := c.Query("track"); track != "" {
		var tr *media.RecordedTrack
		for i := range man.Tracks {
			if man.Tracks[i].ID == track {
				tr = &man.Tracks[i]
			}
		}
		if tr == nil {
			return rental.Errorf(op, rental.KindNotFound, "录像中没有这个文件 (no such track in the recording)")
		}
		ctype := map[string]string{"ivf": "video/x-ivf", "ogg": "audio/ogg"}[tr.Container]
		c.Set(fiber.HeaderContentType, ctype)
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+trackFileName(tr)+`"`)
		c.Set(fiber.HeaderContentLength, strconv.FormatInt(tr.Size, 10))
		pr, pw := io.Pipe()
		go func() {
			_, err := media.ExportTrack(dir, man, r.key, tr.ID, pw)
			pw.CloseWithError(err)
		}()
		return c.SendStream(pr, int(tr.Size))
	}
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="recording-%d.zip"`, id))
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(r.writeZip(pw, dir, man)) }()
	return c.SendStream(pr)
}

// writeZip bundles every track's file with manifest.json, manifest.sig
// and a README saying how to check them without tacklegate.
func (r *Recordings) writeZip(w io.Writer, dir string, man *media.Manifest) error {
	z := zip.NewWriter(w)
	readme, err := z.Create("README.txt")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(readme, zipReadme); err != nil {
		return err
	}
	for _, name := range []string{"manifest.json", "manifest.sig"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		f, err := z.Create(name)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			return err
		}
	}
	for i := range man.Tracks {
		tr := &man.Tracks[i]
		f, err := z.CreateHeader(&zip.FileHeader{Name: trackFileName(tr), Method: zip.Store, Modified: man.Stopped})
		if err != nil {
			return err
		}
		if _, err := media.ExportTrack(dir, man, r.key, tr.ID, f); err != nil {
			return err
		}
	}
	return z.Close()
}

const zipReadme = `本录像的校验方法 (how to check this recording)

1. manifest.json 的 SHA-256 记录在订单的证据链中 (manifest_sha256)。
   The SHA-256 of manifest.json is in the order's evidence chain.
2. manifest.sig 是 manifest.json 的 Ed25519 签名（十六进制），公钥是
   manifest.json 中的 public_key。
   manifest.sig is the hex Ed25519 signature of manifest.json's exact bytes
   by the key in its "public_key" field.
3. 每个 .ivf / .ogg 文件的 SHA-256 等于 manifest.json 中 tracks[].sha256。
   Each file's SHA-256 equals its tracks[].sha256 in manifest.json
   (sha256sum *.ivf *.ogg). "segments" lists how each file was sealed on
   disk, and "pauses" the times nothing was recorded.
`

// trackFileName is "<participant>_<track>.<container>", safe in a
// Content-Disposition header and a zip.
func trackFileName(tr *media.RecordedTrack) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, tr.ID)
	return name + "." + tr.Container
}

func verifyMessage(err error) string {
	var ve *media.VerifyError
	if errors.As(err, &ve) {
		if ve.Index >= 0 {
			return fmt.Sprintf("第 %d 段 (%s) %s", ve.Index+1, ve.File, ve.Reason)
		}
		return ve.Reason
	}
	return err.Error()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
