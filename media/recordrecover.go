package media

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RecoverRecording finishes a recording whose process died before Stop:
// it checks the journal's chain (against head, the chain head stored as
// segments were sealed, when given), then writes and signs the manifest
// Stop would have written, for the segments that were sealed. What was
// still in memory (up to one SegmentDuration per track) is lost; the Ogg
// files have no end-of-stream page and the recording's stop time is its
// last segment's end. A recording that has a manifest already is only
// verified.
func RecoverRecording(dir string, key []byte, signer ed25519.PrivateKey, head string) (*FinishedRecording, error) {
	pub := signer.Public().(ed25519.PublicKey)
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		man, err := VerifyRecording(dir, VerifyOptions{PublicKey: pub, Key: key, Head: head})
		if err != nil {
			return nil, err
		}
		body, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		return &FinishedRecording{Manifest: man, ManifestSHA256: hex.EncodeToString(sum[:]), Dir: dir}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if head == "" {
		// An empty head is only right for a recording that sealed nothing.
		head = "-"
	}
	man, err := VerifyRecording(dir, VerifyOptions{Key: key, Head: head})
	var ve *VerifyError
	switch {
	case err == nil:
	case head == "-" && man != nil && len(man.Segments) == 0:
	case errors.As(err, &ve) && strings.Contains(ve.Reason, "goes on past") && ve.Index <= len(man.Segments):
		// Sealed and journaled, but the process died before the head
		// was stored: the recording is what the stored head attests.
		man.Segments = man.Segments[:ve.Index]
		man.Head = head
	default:
		return nil, err
	}
	sealer, err := newSegmentSealer(key)
	if err != nil {
		return nil, err
	}
	man.Version = 1
	man.PublicKey = hex.EncodeToString(pub)
	man.Tracks = []RecordedTrack{}
	if man.Gaps == nil {
		man.Gaps = []Gap{}
	}
	if man.Segments == nil {
		man.Segments = []SegmentRecord{}
	}
	byID := map[string]*RecordedTrack{}
	sums := map[string]interface{ Write([]byte) (int, error) }{}
	hashes := map[string]func() []byte{}
	for _, s := range man.Segments {
		tr := byID[s.Track]
		if tr == nil {
			participant, _, _ := strings.Cut(s.Track, "/")
			tr = &RecordedTrack{ID: s.Track, Participant: participant, Started: s.Start}
			byID[s.Track] = tr
			h := sha256.New()
			sums[s.Track], hashes[s.Track] = h, func() []byte { return h.Sum(nil) }
		}
		sealed, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.File)))
		if err != nil {
			return nil, &VerifyError{Index: s.Index, File: s.File, Reason: "cannot read: " + err.Error()}
		}
		plain, err := sealer.open(sealed, segmentAAD(man.Recording, s.Track, s.Seq))
		if err != nil {
			return nil, &VerifyError{Index: s.Index, File: s.File, Reason: "does not decrypt"}
		}
		if tr.Segments == 0 {
			switch {
			case bytes.HasPrefix(plain, []byte("DKIF")):
				tr.Kind, tr.Codec, tr.Container = "video", "video/VP8", "ivf"
			case bytes.HasPrefix(plain, []byte("OggS")):
				tr.Kind, tr.Codec, tr.Container = "audio", "audio/opus", "ogg"
			}
		}
		sums[s.Track].Write(plain)
		tr.Segments++
		tr.Size += int64(len(plain))
		tr.Ended = s.End
		if man.Started.IsZero() || s.Start.Before(man.Started) {
			man.Started = s.Start
		}
		if s.End.After(man.Stopped) {
			man.Stopped = s.End
		}
	}
	for id, tr := range byID {
		tr.SHA256 = hex.EncodeToString(hashes[id]())
		man.Tracks = append(man.Tracks, *tr)
	}
	sort.Slice(man.Tracks, func(i, j int) bool { return man.Tracks[i].ID < man.Tracks[j].ID })
	for i := range man.Gaps {
		if man.Gaps[i].Resumed.IsZero() {
			man.Gaps[i].Resumed = man.Stopped
		}
	}
	body, err := canonicalJSON(man)
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	if err := writeFileSync(filepath.Join(dir, "manifest.sig"), []byte(hex.EncodeToString(ed25519.Sign(signer, body))+"\n")); err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(dir, "manifest.json"), body); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return &FinishedRecording{Manifest: man, ManifestSHA256: hex.EncodeToString(sum[:]), Dir: dir}, nil
}
