package media

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// segmentMagic starts every stored segment: format version 1, then the
// 12-byte GCM nonce, then the ciphertext with its tag.
var segmentMagic = []byte("TGSEG1\x00\x00")

type segmentSealer struct{ aead cipher.AEAD }

func newSegmentSealer(key []byte) (segmentSealer, error) {
	if len(key) != 32 {
		return segmentSealer{}, fmt.Errorf("key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return segmentSealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return segmentSealer{}, err
	}
	return segmentSealer{aead}, nil
}

func (s segmentSealer) seal(plain, aad []byte) []byte {
	out := make([]byte, 0, len(segmentMagic)+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out = append(out, segmentMagic...)
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce) //nolint:errcheck // crypto/rand never fails on Linux
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plain, aad)
}

func (s segmentSealer) open(sealed, aad []byte) ([]byte, error) {
	n := len(segmentMagic) + s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() || !bytes.Equal(sealed[:len(segmentMagic)], segmentMagic) {
		return nil, errors.New("not a sealed segment")
	}
	return s.aead.Open(nil, sealed[len(segmentMagic):n], sealed[n:], aad)
}

// segmentAAD binds a segment to its place: moved, renamed or swapped, it
// does not decrypt.
func segmentAAD(recording, track string, seq int) []byte {
	var b bytes.Buffer
	b.WriteString("tacklegate recording segment v1\x00")
	b.WriteString(recording)
	b.WriteByte(0)
	b.WriteString(track)
	b.WriteByte(0)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	b.Write(n[:])
	return b.Bytes()
}

// canonicalJSON is the one encoding hashed and signed: encoding/json of
// the value (struct fields in declaration order, map keys sorted, times in
// RFC 3339 UTC).
func canonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// VerifyError says what is wrong with a recording, naming the first
// broken or missing segment when it is one.
type VerifyError struct {
	Index  int    // chain position of the segment; -1 when the fault is not a segment's
	File   string // the segment's file, relative to the recording's folder
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Index < 0 {
		return "recording: " + e.Reason
	}
	return fmt.Sprintf("recording: segment %d (%s): %s", e.Index, e.File, e.Reason)
}

// VerifyOptions say what VerifyRecording checks against.
type VerifyOptions struct {
	// PublicKey checks the manifest's signature. Required when a manifest
	// is there.
	PublicKey ed25519.PublicKey
	// Key, if set, decrypts every segment and checks the plaintext hashes
	// and each track's whole-file hash; without it only the stored files'
	// hashes and the chain are checked.
	Key []byte
	// Head, if set, is the chain head stored as segments completed (the
	// gateway's copy): the recording must end exactly there. This is what
	// detects a recording cut short together with its manifest.
	Head string
}

// VerifyRecording checks the recording in dir: the manifest's signature,
// then every segment in chain order (present, stored hash, link, and with
// a key the plaintext), then that the chain ends at the manifest's head
// (and at opts.Head). Without a manifest (a recording that never
// finished) the journal is checked instead, and opts.Head is required. It
// returns the manifest (or what the journal holds) and a *VerifyError
// naming the first fault.
func VerifyRecording(dir string, opts VerifyOptions) (*Manifest, error) {
	body, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	var man *Manifest
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.Head == "" {
			return nil, &VerifyError{Index: -1, Reason: "manifest.json is missing and no chain head was given to check the journal against"}
		}
		man, err = readJournal(dir)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, &VerifyError{Index: -1, Reason: "cannot read manifest.json: " + err.Error()}
	default:
		sig, err := os.ReadFile(filepath.Join(dir, "manifest.sig"))
		if err != nil {
			return nil, &VerifyError{Index: -1, Reason: "manifest.sig is missing"}
		}
		raw, err := hex.DecodeString(strings.TrimSpace(string(sig)))
		if err != nil || len(opts.PublicKey) != ed25519.PublicKeySize || !ed25519.Verify(opts.PublicKey, body, raw) {
			return nil, &VerifyError{Index: -1, Reason: "the manifest's signature does not verify"}
		}
		man = &Manifest{}
		if err := json.Unmarshal(body, man); err != nil {
			return nil, &VerifyError{Index: -1, Reason: "manifest.json does not parse: " + err.Error()}
		}
	}

	var sealer segmentSealer
	if opts.Key != nil {
		if sealer, err = newSegmentSealer(opts.Key); err != nil {
			return man, &VerifyError{Index: -1, Reason: "bad key: " + err.Error()}
		}
	}
	totals := map[string]*trackTotal{}
	prev := ""
	for i, s := range man.Segments {
		fail := func(format string, args ...any) (*Manifest, error) {
			return man, &VerifyError{Index: i, File: s.File, Reason: fmt.Sprintf(format, args...)}
		}
		if s.Index != i {
			return fail("listed at position %d but numbered %d", i, s.Index)
		}
		if s.Prev != prev {
			return fail("does not follow the segment before it in the chain")
		}
		if link, err := segmentLink(s); err != nil || link != s.Link {
			return fail("its record does not match its link (edited)")
		}
		prev = s.Link
		t := totals[s.Track]
		if t == nil {
			t = &trackTotal{h: sha256.New()}
			totals[s.Track] = t
		}
		if s.Seq != t.seq {
			return fail("is number %d of track %s, expected %d (a segment is missing before it)", s.Seq, s.Track, t.seq)
		}
		t.seq++
		if !safeRelPath(s.File) {
			return fail("names a file outside the recording")
		}
		sealed, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.File)))
		if errors.Is(err, fs.ErrNotExist) {
			return fail("file missing")
		} else if err != nil {
			return fail("cannot read: %v", err)
		}
		if sum := sha256.Sum256(sealed); hex.EncodeToString(sum[:]) != s.FileSHA256 {
			return fail("stored file changed (hash mismatch)")
		}
		if opts.Key == nil {
			continue
		}
		plain, err := sealer.open(sealed, segmentAAD(man.Recording, s.Track, s.Seq))
		if err != nil {
			return fail("does not decrypt (wrong key, or moved from elsewhere)")
		}
		if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != s.SHA256 || len(plain) != s.Size {
			return fail("content hash mismatch")
		}
		t.h.Write(plain)
	}
	if prev != man.Head {
		return man, &VerifyError{Index: len(man.Segments), Reason: "the chain ends before the manifest's head: segments are missing at the end"}
	}
	if opts.Head != "" && opts.Head != man.Head {
		idx := -1
		for i, s := range man.Segments {
			if s.Link == opts.Head {
				idx = i
			}
		}
		if idx >= 0 {
			return man, &VerifyError{Index: idx + 1, Reason: fmt.Sprintf("the recording goes on past the recorded chain head (segment %d)", idx)}
		}
		return man, &VerifyError{Index: len(man.Segments), Reason: "the recorded chain head is not in the recording: segments are missing at the end"}
	}
	if opts.Key != nil {
		for _, tr := range man.Tracks {
			t := totals[tr.ID]
			sum := hex.EncodeToString(sha256.New().Sum(nil))
			if t != nil {
				sum = hex.EncodeToString(t.h.Sum(nil))
			}
			if sum != tr.SHA256 {
				return man, &VerifyError{Index: -1, Reason: "track " + tr.ID + ": the whole file's hash does not match the manifest"}
			}
		}
	}
	return man, nil
}

type trackTotal struct {
	h   hash.Hash
	seq int
}

func safeRelPath(p string) bool {
	c := filepath.ToSlash(filepath.Clean(filepath.FromSlash(p)))
	return p != "" && !filepath.IsAbs(p) && c == p && !strings.HasPrefix(c, "../") && c != ".."
}

// readJournal rebuilds what a manifest would hold from journal.jsonl, for
// a recording that never finished (the process died).
func readJournal(dir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		return nil, &VerifyError{Index: -1, Reason: "neither manifest.json nor journal.jsonl is there"}
	}
	defer f.Close()
	man := &Manifest{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Kind    string        `json:"kind"`
			Segment SegmentRecord `json:"segment"`
			At      time.Time     `json:"at"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// A line cut by the crash is the journal's end.
			break
		}
		switch e.Kind {
		case "segment":
			man.Segments = append(man.Segments, e.Segment)
			man.Head = e.Segment.Link
			man.Room, man.Recording = e.Segment.Room, e.Segment.Recording
		case "pause":
			man.Gaps = append(man.Gaps, Gap{Paused: e.At})
		case "resume":
			if n := len(man.Gaps); n > 0 {
				man.Gaps[n-1].Resumed = e.At
			}
		}
	}
	return man, nil
}

// ExportTrack writes track's playable file (IVF or Ogg) to w: its
// segments decrypted in order, each checked against its hash first, so a
// changed recording is refused rather than exported. The result's SHA-256
// is the track's hash in the manifest. Verify the recording first; this
// checks only what it reads.
func ExportTrack(dir string, man *Manifest, key []byte, track string, w io.Writer) (int64, error) {
	sealer, err := newSegmentSealer(key)
	if err != nil {
		return 0, &VerifyError{Index: -1, Reason: "bad key: " + err.Error()}
	}
	var n int64
	found := false
	for _, s := range man.Segments {
		if s.Track != track {
			continue
		}
		found = true
		if !safeRelPath(s.File) {
			return n, &VerifyError{Index: s.Index, File: s.File, Reason: "names a file outside the recording"}
		}
		sealed, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s.File)))
		if err != nil {
			return n, &VerifyError{Index: s.Index, File: s.File, Reason: "cannot read: " + err.Error()}
		}
		plain, err := sealer.open(sealed, segmentAAD(man.Recording, s.Track, s.Seq))
		if err != nil {
			return n, &VerifyError{Index: s.Index, File: s.File, Reason: "does not decrypt"}
		}
		if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != s.SHA256 {
			return n, &VerifyError{Index: s.Index, File: s.File, Reason: "content hash mismatch"}
		}
		k, err := w.Write(plain)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	if !found {
		return 0, errorf("export", CodeInvalid, "the recording has no track %q", track)
	}
	return n, nil
}
