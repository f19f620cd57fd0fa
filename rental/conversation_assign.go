package rental

import (
	"bytes"
	"time"
)

// StaffLoad is what assignment knows about one active staff member.
type StaffLoad struct {
	UserID string
	Name   string
	OnDuty bool // not /off, and available by presence (gateway/presence.go)
	Open   int  // live conversations assigned to them
}

// DefaultMaxOpen is how many live conversations a staff member is given
// before assignment passes them over.
const DefaultMaxOpen = 8

// AssignReason says why a conversation went where it went.
type AssignReason string

const (
	AssignSticky      AssignReason = "sticky"       // the customer's last staff member
	AssignLeastLoaded AssignReason = "least_loaded" // the on-duty staff member with the fewest open conversations
	AssignNobody      AssignReason = "nobody"       // nobody is on duty
	AssignAllBusy     AssignReason = "all_busy"     // everyone on duty has MaxOpen conversations
)

// Assignment is the outcome of ChooseStaff.
type Assignment struct {
	UserID string // "" for AssignNobody and AssignAllBusy
	Reason AssignReason
}

// ChooseStaff picks who answers a conversation: the customer's last staff
// member (sticky) if on duty and under maxOpen, else the on-duty staff member
// with the fewest live conversations under maxOpen (ties: the first in the
// order given, so the store's order makes it deterministic). maxOpen ≤ 0
// means DefaultMaxOpen. current is the conversation's own assignee, if any:
// their count already includes it.
func ChooseStaff(loads []StaffLoad, sticky, current string, maxOpen int) Assignment {
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpen
	}
	room := func(l StaffLoad) bool {
		n := l.Open
		if l.UserID == current {
			n-- // the conversation at hand is already counted
		}
		return n < maxOpen
	}
	onDuty := false
	for _, l := range loads {
		if l.OnDuty && l.UserID == sticky && sticky != "" && room(l) {
			return Assignment{UserID: l.UserID, Reason: AssignSticky}
		}
		onDuty = onDuty || l.OnDuty
	}
	best := -1
	for i, l := range loads {
		if l.OnDuty && room(l) && (best < 0 || l.Open < loads[best].Open) {
			best = i
		}
	}
	switch {
	case best >= 0:
		return Assignment{UserID: loads[best].UserID, Reason: AssignLeastLoaded}
	case onDuty:
		return Assignment{Reason: AssignAllBusy}
	}
	return Assignment{Reason: AssignNobody}
}

// amrFrameBytes are the speech-frame sizes (without the 1-byte header) of
// AMR-NB and AMR-WB by frame type (RFC 4867 §5.3); 0 is an unused type.
var (
	amrNBFrameBytes = [16]int{12, 13, 15, 17, 19, 20, 26, 31, 5, 0, 0, 0, 0, 0, 0, 0}
	amrWBFrameBytes = [16]int{17, 23, 32, 36, 40, 46, 50, 58, 60, 5, 0, 0, 0, 0, 0, 0}
)

// AMRDuration reads the length of an AMR (NB or WB) file in its storage
// format: every frame is 20 ms. WeChat delivers voice messages as AMR
// without a duration, and staff want to know how long a note is before
// playing it.
func AMRDuration(data []byte) (time.Duration, bool) {
	var sizes *[16]int
	switch {
	case bytes.HasPrefix(data, []byte("#!AMR-WB\n")):
		sizes, data = &amrWBFrameBytes, data[len("#!AMR-WB\n"):]
	case bytes.HasPrefix(data, []byte("#!AMR\n")):
		sizes, data = &amrNBFrameBytes, data[len("#!AMR\n"):]
	default:
		return 0, false
	}
	frames := 0
	for len(data) > 0 {
		ft := (data[0] >> 3) & 0x0F
		n := 1 + sizes[ft]
		if ft == 15 { // NO_DATA: a header byte only
			n = 1
		}
		if n > len(data) {
			break // a truncated last frame
		}
		data = data[n:]
		frames++
	}
	return time.Duration(frames) * 20 * time.Millisecond, true
}
