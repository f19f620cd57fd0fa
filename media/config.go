package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/webrtc/v4"
)

// Config is everything a Manager needs. The zero value of each field means
// the default given beside it.
type Config struct {
	MaxRooms        int // rooms open at once; default 100
	MaxParticipants int // per room, the ceiling for RoomOptions.MaxParticipants; default 8

	// EmptyRoomGrace is how long a room with nobody in it stays open, so a
	// customer whose page reloads finds the same room. Default 30s.
	EmptyRoomGrace time.Duration
	// ReconnectGrace is how long a participant whose transport went away
	// (Session.Close) or whose ICE failed is kept, tracks and all, waiting for
	// a Join with the same participant id or an ICE restart. Default 20s.
	ReconnectGrace time.Duration

	// ICEServers are used by the server's own PeerConnections (STUN to learn
	// a server-reflexive address). The ICE servers a browser should use
	// (TURN with short-lived credentials) are the gateway's business.
	ICEServers []webrtc.ICEServer
	// PublicIPs replace the host candidates' addresses: the server sits
	// behind a 1:1 NAT (a cloud VM) and these are its public addresses.
	PublicIPs []string
	// UDPPortMin and UDPPortMax bound the ephemeral ports of host
	// candidates, for firewalls. Both zero: any port.
	UDPPortMin, UDPPortMax uint16
	// IncludeLoopback gathers 127.0.0.1 candidates. Only tests and
	// benchmarks that run both ends on one machine want this.
	IncludeLoopback bool

	// ICE liveness. A dead path (Wi-Fi gone) is noticed after
	// ICEDisconnectedTimeout, declared failed after ICEFailedTimeout more;
	// the client should restart ICE on "disconnected". Defaults 2s, 5s and
	// 500ms keepalives, against pion's 5s/25s/2s, because a customer
	// walking out of Wi-Fi range should not stare at a frozen picture.
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	ICEKeepaliveInterval   time.Duration

	// InitialBitrate is the downstream bandwidth estimate a new subscriber
	// starts from, in bit/s, before feedback arrives: it picks the first
	// simulcast layer. Default 600 kbit/s, enough for a 360p layer.
	InitialBitrate int

	Logger *slog.Logger
	Now    func() time.Time

	Hooks Hooks
}

// Hooks let the gateway record call outcomes. Each is called on the
// goroutine where the event happened (Join's caller, a grace timer, a
// Session's Handle), never with a media lock held, so it may call back into
// the Manager; it must not block for long. Any may be nil.
type Hooks struct {
	OnParticipantJoined func(ParticipantEvent)
	OnParticipantLeft   func(ParticipantEvent)
	OnRoomClosed        func(RoomEvent)
}

// ParticipantEvent describes a participant arriving in or leaving a room.
type ParticipantEvent struct {
	Room        string
	Participant ParticipantInfo
	At          time.Time
	// For OnParticipantLeft only: why, and how long they were in the room.
	Reason   LeaveReason
	Duration time.Duration
}

// RoomEvent describes a room that has closed.
type RoomEvent struct {
	Room             string
	AudioOnly        bool
	Opened, Closed   time.Time
	Duration         time.Duration
	PeakParticipants int
	Reason           string // "empty" after EmptyRoomGrace, "closed" by CloseRoom, "shutdown"
}

// LeaveReason says why a participant left a room.
type LeaveReason string

const (
	ReasonLeft     LeaveReason = "left"       // the client sent "leave"
	ReasonTimeout  LeaveReason = "timeout"    // the transport went away and did not come back within ReconnectGrace
	ReasonFailed   LeaveReason = "ice_failed" // ICE failed and was not restarted within ReconnectGrace
	ReasonHangup   LeaveReason = "hangup"     // the client closed its PeerConnection without "leave"
	ReasonClosed   LeaveReason = "room_closed"
	ReasonShutdown LeaveReason = "shutdown"
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.MaxRooms == 0 {
		c.MaxRooms = 100
	}
	if c.MaxParticipants == 0 {
		c.MaxParticipants = 8
	}
	def(&c.EmptyRoomGrace, 30*time.Second)
	def(&c.ReconnectGrace, 20*time.Second)
	def(&c.ICEDisconnectedTimeout, 2*time.Second)
	def(&c.ICEFailedTimeout, 5*time.Second)
	def(&c.ICEKeepaliveInterval, 500*time.Millisecond)
	if c.InitialBitrate == 0 {
		c.InitialBitrate = 600_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MaxRooms < 0 {
		bad("media: MaxRooms %d is negative", c.MaxRooms)
	}
	if c.MaxParticipants < 0 {
		bad("media: MaxParticipants %d is negative", c.MaxParticipants)
	}
	if c.InitialBitrate < 0 {
		bad("media: InitialBitrate %d is negative", c.InitialBitrate)
	}
	if c.UDPPortMax < c.UDPPortMin {
		bad("media: UDPPortMax %d is below UDPPortMin %d", c.UDPPortMax, c.UDPPortMin)
	}
	for _, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			bad("media: PublicIPs: %q is not an IP address", ip)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"EmptyRoomGrace", c.EmptyRoomGrace}, {"ReconnectGrace", c.ReconnectGrace},
		{"ICEDisconnectedTimeout", c.ICEDisconnectedTimeout}, {"ICEFailedTimeout", c.ICEFailedTimeout},
		{"ICEKeepaliveInterval", c.ICEKeepaliveInterval},
	} {
		if d.v < 0 {
			bad("media: %s %s is negative", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}
