package mediatest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/media"
)

func TestDefaultMedia(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if m.Width != 640 || m.Height != 360 || m.FPS != 25 || len(m.Video) != 150 {
		t.Errorf("video: %dx%d %.1f fps, %d frames", m.Width, m.Height, m.FPS, len(m.Video))
	}
	keys := 0
	for _, f := range m.Video {
		if f.Key {
			keys++
		}
	}
	if keys < 2 || keys > 4 {
		t.Errorf("%d keyframes in 6 s, want one every 2.5 s", keys)
	}
	if m.VideoBitrate < 400_000 || m.VideoBitrate > 600_000 || len(m.Audio) < 250 {
		t.Errorf("video %d bit/s, %d audio packets", m.VideoBitrate, len(m.Audio))
	}
}

// TestTwoClientsThroughServer: two publishing clients in one room of the
// bench server each receive the other's audio and video, and leaving
// empties the room.
func TestTwoClientsThroughServer(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(media.Config{IncludeLoopback: true, EmptyRoomGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ws := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?room=r1&id="
	ctx := context.Background()
	a, err := Dial(ctx, ws+"a", Options{Media: m})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dial(ctx, ws+"b", Options{Media: m, Offset: 40})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, c := range []*Client{a, b} {
		for {
			_, v := c.JoinTime()
			if v > 0 {
				break
			}
			if time.Now().After(deadline) || c.Err() != nil {
				t.Fatalf("no video: %v", c.Err())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(time.Second)
	for name, c := range map[string]*Client{"a": a, "b": b} {
		kinds := map[string]int64{}
		for _, tr := range c.Tracks() {
			kinds[tr.Kind] += tr.Received
		}
		if kinds["audio"] < 20 || kinds["video"] < 20 {
			t.Errorf("%s received %v in a second", name, kinds)
		}
	}
	a.Close()
	b.Close()
	for time.Now().Before(deadline) && srv.M.Stats().Rooms > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := srv.M.Stats().Rooms; n != 0 {
		t.Errorf("%d rooms left open", n)
	}
}
