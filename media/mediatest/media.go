// Package mediatest is a WebRTC load generator for media's rooms: pion
// clients that join over the signaling WebSocket exactly as the room page
// does, publish pre-encoded VP8 and Opus (no encoding in the generator),
// receive through the real interceptors (NACK, RTCP reports, TWCC) and
// count what arrives; and a bare SFU server (media.Manager behind /ws,
// with its statistics) to run in a process of its own, so that its CPU
// can be measured apart from the clients'. `tacklegate bench rooms` drives
// both.
package mediatest

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// The media the clients play, made once with Debian's ffmpeg:
//
//	ffmpeg -f lavfi -i testsrc2=size=640x360:rate=25 -t 6 -c:v libvpx -deadline realtime -cpu-used 8 \
//	  -b:v 500k -minrate 500k -maxrate 500k -bufsize 250k -g 62 -keyint_min 62 -auto-alt-ref 0 \
//	  -lag-in-frames 0 -error-resilient 1 video-360p-500k.ivf
//	ffmpeg -f lavfi -i sine=frequency=440:sample_rate=48000 -t 6 -c:a libopus -b:a 32k \
//	  -frame_duration 20 -page_duration 20000 -ac 2 audio-opus-32k.ogg
//
// 640×360, 25 fps, VP8 CBR ≈ 500 kbit/s with a keyframe every 2.5 s;
// Opus ≈ 32 kbit/s in 20 ms packets; both loop every 6 s.
//
//go:embed testdata/video-360p-500k.ivf testdata/audio-opus-32k.ogg
var files embed.FS

// Frame is one encoded frame or audio packet and how long it lasts.
type Frame struct {
	Data     []byte
	Duration time.Duration
	Key      bool // a VP8 keyframe
}

// Media is a clip held in memory.
type Media struct {
	Video         []Frame
	Audio         []Frame
	Width, Height int
	FPS           float64
	VideoBitrate  int // bit/s, averaged over the clip
	AudioBitrate  int
}

// Describe says what the clip is, for reports.
func (m *Media) Describe() string {
	return fmt.Sprintf("VP8 %dx%d %.0f fps ≈%d kbit/s + Opus ≈%d kbit/s (pre-encoded, looped)",
		m.Width, m.Height, m.FPS, m.VideoBitrate/1000, m.AudioBitrate/1000)
}

// Default is the embedded 360p clip.
func Default() (*Media, error) {
	v, err := files.ReadFile("testdata/video-360p-500k.ivf")
	if err != nil {
		return nil, err
	}
	a, err := files.ReadFile("testdata/audio-opus-32k.ogg")
	if err != nil {
		return nil, err
	}
	return Load(bytes.NewReader(v), bytes.NewReader(a))
}

// Load reads an IVF (VP8) and an Ogg (Opus) stream into memory.
func Load(ivf, ogg io.Reader) (*Media, error) {
	m := &Media{}
	r, h, err := ivfreader.NewWith(ivf)
	if err != nil {
		return nil, fmt.Errorf("ivf: %w", err)
	}
	if h.FourCC != "VP80" {
		return nil, fmt.Errorf("ivf: %s, want VP80", h.FourCC)
	}
	m.Width, m.Height = int(h.Width), int(h.Height)
	frameDur := time.Duration(float64(time.Second) * float64(h.TimebaseNumerator) / float64(h.TimebaseDenominator))
	var vbytes int
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ivf: %w", err)
		}
		// VP8 payload header: bit 0 of the first byte is 0 for a keyframe.
		m.Video = append(m.Video, Frame{Data: f, Duration: frameDur, Key: len(f) > 0 && f[0]&1 == 0})
		vbytes += len(f)
	}
	if len(m.Video) == 0 || !m.Video[0].Key {
		return nil, errors.New("ivf: no frames, or the first is not a keyframe")
	}
	m.FPS = float64(time.Second) / float64(frameDur)
	clip := time.Duration(len(m.Video)) * frameDur
	m.VideoBitrate = int(float64(vbytes*8) / clip.Seconds())

	o, _, err := oggreader.NewWith(ogg)
	if err != nil {
		return nil, fmt.Errorf("ogg: %w", err)
	}
	var abytes int
	var last uint64
	for {
		page, ph, err := o.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ogg: %w", err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
			last = ph.GranulePosition
			continue
		}
		d := time.Duration(ph.GranulePosition-last) * time.Second / 48000
		last = ph.GranulePosition
		if d <= 0 || d > 120*time.Millisecond {
			d = 20 * time.Millisecond
		}
		m.Audio = append(m.Audio, Frame{Data: page, Duration: d})
		abytes += len(page)
	}
	if len(m.Audio) == 0 {
		return nil, errors.New("ogg: no audio packets")
	}
	var adur time.Duration
	for _, f := range m.Audio {
		adur += f.Duration
	}
	m.AudioBitrate = int(float64(abytes*8) / adur.Seconds())
	return m, nil
}
