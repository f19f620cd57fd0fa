package wxsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// mediaObject is a temporary media file of one host (rule S8: usable only
// by the account that owns it, for MediaTTL).
type mediaObject struct {
	id          string
	host        string
	kind        string // image, voice, video, file
	filename    string
	contentType string
	data        []byte
	createdAt   time.Time
}

// Size limits of temporary media (bytes).
const (
	maxImage  = 10 << 20
	maxVoice  = 2 << 20
	maxVideo  = 10 << 20
	maxFile   = 20 << 20
	maxUpload = maxFile + 1<<20 // multipart overhead
)

func (s *Simulator) storeMediaLocked(host, kind, filename, contentType string, data []byte, now time.Time) *mediaObject {
	m := &mediaObject{
		id: randomString(64, idChars), host: host, kind: kind, filename: filename,
		contentType: contentType, data: data, createdAt: now,
	}
	s.media[m.id] = m
	return m
}

// lookupMediaLocked finds a media_id usable by host at now.
func (s *Simulator) lookupMediaLocked(host, id string, now time.Time) (*mediaObject, error) {
	m, ok := s.media[id]
	if !ok || m.host != host || !now.Before(m.createdAt.Add(s.cfg.Rules.MediaTTL)) {
		return nil, wxErr(errInvalidMediaID, "invalid media_id")
	}
	return m, nil
}

// checkMedia applies the type and size rules; mini-program customer service
// accepts images only.
func checkMedia(host, kind string, data []byte) (contentType string, err error) {
	if host == hostWeChat && kind != "image" {
		return "", wxErr(errInvalidMediaType, "invalid media type")
	}
	if len(data) <= 5 {
		return "", wxErr(errInvalidFileSize, "invalid file size")
	}
	sniffed := http.DetectContentType(data)
	switch kind {
	case "image":
		ok := sniffed == "image/jpeg" || sniffed == "image/png"
		if host == hostWeChat { // official-account style media also takes gif/bmp
			ok = ok || sniffed == "image/gif" || sniffed == "image/bmp"
		}
		if !ok {
			return "", wxErr(errInvalidFileType, "invalid file type")
		}
		if len(data) > maxImage {
			return "", wxErr(errInvalidImageSize, "invalid image size")
		}
		return sniffed, nil
	case "voice":
		if !bytes.HasPrefix(data, []byte("#!AMR")) {
			return "", wxErr(errInvalidFileType, "invalid file type: voice must be AMR")
		}
		if len(data) > maxVoice {
			return "", wxErr(errInvalidFileSize, "invalid file size")
		}
		return "audio/amr", nil
	case "video":
		if len(data) < 12 || string(data[4:8]) != "ftyp" {
			return "", wxErr(errInvalidFileType, "invalid file type: video must be MP4")
		}
		if len(data) > maxVideo {
			return "", wxErr(errInvalidFileSize, "invalid file size")
		}
		return "video/mp4", nil
	case "file":
		if len(data) > maxFile {
			return "", wxErr(errInvalidFileSize, "invalid file size")
		}
		return sniffed, nil
	}
	return "", wxErr(errInvalidMediaType, "invalid media type")
}

// handleMediaUpload: POST /cgi-bin/media/upload?type=… on either host. The
// file is the multipart field "media". The two hosts answer differently:
// created_at is a number on api.weixin and a string on qyapi.
func (s *Simulator) handleMediaUpload(w http.ResponseWriter, r *http.Request, c *call) error {
	kind := r.URL.Query().Get("type")
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	file, header, err := r.FormFile("media")
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return wxErr(errInvalidFileSize, "invalid file size")
		}
		return wxErr(errMissingMedia, "media data missing")
	}
	defer file.Close()
	data, err := io.ReadAll(file)
	if err != nil {
		return wxErr(errInvalidFileSize, "invalid file size")
	}
	contentType, err := checkMedia(c.host, kind, data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	m := s.storeMediaLocked(c.host, kind, path.Base(header.Filename), contentType, data, c.now)
	s.mu.Unlock()
	if c.host == hostWeCom {
		writeJSON(w, http.StatusOK, struct {
			ErrCode   int    `json:"errcode"`
			ErrMsg    string `json:"errmsg"`
			Type      string `json:"type"`
			MediaID   string `json:"media_id"`
			CreatedAt string `json:"created_at"`
		}{0, "", kind, m.id, strconv.FormatInt(c.now.Unix(), 10)})
		return nil
	}
	writeJSON(w, http.StatusOK, struct {
		Type      string `json:"type"`
		MediaID   string `json:"media_id"`
		CreatedAt int64  `json:"created_at"`
	}{kind, m.id, c.now.Unix()})
	return nil
}

// handleMediaGet: GET /cgi-bin/media/get?media_id=… — raw bytes (with Range
// support, as WeCom documents) or an errcode JSON.
func (s *Simulator) handleMediaGet(w http.ResponseWriter, r *http.Request, c *call) error {
	s.mu.Lock()
	m, err := s.lookupMediaLocked(c.host, r.URL.Query().Get("media_id"), c.now)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	serveMedia(w, r, m)
	return nil
}

func serveMedia(w http.ResponseWriter, r *http.Request, m *mediaObject) {
	w.Header().Set("Content-Type", m.contentType)
	name := strings.NewReplacer(`"`, "", `\`, "", "\r", "", "\n", "").Replace(m.filename)
	w.Header().Set("Content-disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-cache, must-revalidate")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(m.data))
}

// mediaFilename makes a plausible name for media the simulator creates itself.
func mediaFilename(kind, contentType string) string {
	ext := ".bin"
	switch contentType {
	case "image/jpeg":
		ext = ".jpg"
	case "image/png":
		ext = ".png"
	case "audio/amr":
		ext = ".amr"
	case "video/mp4":
		ext = ".mp4"
	}
	return fmt.Sprintf("%s%s", kind, ext)
}
