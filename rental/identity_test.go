package rental

import "testing"

func TestDecideLink(t *testing.T) {
	guest := Member{ID: 1, Tier: TierGuest}
	imported := Member{ID: 2, MemberNo: "A001", Phone: "8613800000000", Tier: "gold"}
	guestWithPhone := Member{ID: 3, Phone: "8613900000000", Tier: TierGuest}
	tests := []struct {
		name string
		s    LinkState
		want LinkAction
	}{
		{"unknown phone goes to the caller", LinkState{Caller: guest, CallerIdentities: 1}, LinkSetPhone},
		{"already the caller's", LinkState{Caller: imported, CallerIdentities: 1, Owner: &imported, OwnerIdentities: 1}, LinkNothing},
		{"imported member without WeChat: move the guest's identity there", LinkState{Caller: guest, CallerIdentities: 1, Owner: &imported}, LinkMoveIdentity},
		{"member already held by another WeChat: review", LinkState{Caller: guest, CallerIdentities: 1, Owner: &imported, OwnerIdentities: 1}, LinkReview},
		{"caller is a real member too: review, never merge silently", LinkState{Caller: guestWithPhone, CallerIdentities: 1, Owner: &imported}, LinkReview},
	}
	for _, tt := range tests {
		if got := DecideLink(tt.s); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	good := map[string]string{
		"13800000000": "8613800000000", "138 0000 0000": "8613800000000", "+86 138-0000-0000": "8613800000000",
		"8613800000000": "8613800000000", "+85291234567": "85291234567", "19912345678": "8619912345678",
	}
	for in, want := range good {
		if got, err := NormalizePhone(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "12345", "1380000000", "23800000000", "abc13800000000", "+861", "12800000000", "138000000001"} {
		if got, err := NormalizePhone(in); err == nil || ErrorKind(err) != KindInvalid {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
	if m := MaskPhone("8613812345678"); m != "86138****5678" {
		t.Errorf("mask %q", m)
	}
}
