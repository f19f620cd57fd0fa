package rental

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// chain builds a five-item chain for order 42.
func chain(t *testing.T) ([]Evidence, ChainHead) {
	t.Helper()
	var items []Evidence
	var head ChainHead
	for i := range 5 {
		e := Evidence{
			OrderID: 42, Kind: EvidencePhoto, MediaType: "image/jpeg", Name: fmt.Sprintf("rod-%d.jpg", i),
			Actor: StaffActor("li"), CreatedAt: t0.Add(time.Duration(i) * time.Minute),
			Content: []byte(fmt.Sprintf("jpeg bytes %d", i)), ID: EvidenceID(i + 1),
		}
		var err error
		if head, err = e.Chain(head); err != nil {
			t.Fatal(err)
		}
		items = append(items, e)
	}
	return items, head
}

func TestEvidenceChainIntact(t *testing.T) {
	items, head := chain(t)
	if b := VerifyChainHead(items, head); b != nil {
		t.Fatalf("intact chain broken: %v", b)
	}
	if items[0].PrevLink != GenesisLink || items[1].PrevLink != items[0].Link || head.Count != 5 || head.Link != items[4].Link {
		t.Error("links do not follow each other")
	}
	if VerifyChainHead(nil, ChainHead{}) != nil {
		t.Error("empty chain broken")
	}
}

func TestEvidenceChainTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func([]Evidence) []Evidence
		index  int
		reason BreakReason
	}{
		{"content edited", func(s []Evidence) []Evidence { s[2].Content = []byte("other photo"); return s }, 2, BreakContent},
		{"content and its hash edited", func(s []Evidence) []Evidence {
			s[2].Content = []byte("other photo")
			s[2].ContentHash = ContentHash(s[2].Content)
			return s
		}, 2, BreakRecord},
		{"name edited", func(s []Evidence) []Evidence { s[1].Name = "x.jpg"; return s }, 1, BreakRecord},
		{"actor edited", func(s []Evidence) []Evidence { s[3].Actor = "staff:wang"; return s }, 3, BreakRecord},
		{"time edited", func(s []Evidence) []Evidence { s[0].CreatedAt = s[0].CreatedAt.Add(time.Second); return s }, 0, BreakRecord},
		{"kind edited", func(s []Evidence) []Evidence { s[4].Kind = EvidenceNote; return s }, 4, BreakRecord},
		{"link edited", func(s []Evidence) []Evidence { s[1].Link = GenesisLink; return s }, 1, BreakRecord},
		{"prev link edited", func(s []Evidence) []Evidence { s[3].PrevLink = GenesisLink; return s }, 3, BreakRecord},
		{"middle item deleted", func(s []Evidence) []Evidence { return append(s[:2:2], s[3:]...) }, 2, BreakMissing},
		{"first item deleted", func(s []Evidence) []Evidence { return s[1:] }, 0, BreakMissing},
		{"last item deleted", func(s []Evidence) []Evidence { return s[:4] }, 4, BreakMissing},
		{"two items swapped", func(s []Evidence) []Evidence { s[1], s[2] = s[2], s[1]; return s }, 1, BreakReordered},
		{"swapped and renumbered", func(s []Evidence) []Evidence {
			s[1], s[2] = s[2], s[1]
			s[1].Seq, s[2].Seq = 2, 3
			return s
		}, 1, BreakReordered},
		{"item repeated", func(s []Evidence) []Evidence { return append(s[:3:3], s[2], s[3], s[4]) }, 3, BreakReordered},
		{"foreign item", func(s []Evidence) []Evidence { s[2].OrderID = 43; return s }, 2, BreakForeign},
		{"sealed copy altered", func(s []Evidence) []Evidence { s[2].Content, s[2].Unreadable = nil, true; return s }, 2, BreakUnreadable},
		{"item appended without the head", func(s []Evidence) []Evidence {
			e := Evidence{OrderID: 42, Kind: EvidenceNote, Actor: "staff:x", CreatedAt: t0, Content: []byte("x")}
			e.Chain(ChainHead{Count: 5, Link: s[4].Link})
			return append(s, e)
		}, 5, BreakHead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, head := chain(t)
			b := VerifyChainHead(tt.tamper(items), head)
			if b == nil {
				t.Fatal("tampering not detected")
			}
			if b.Index != tt.index || b.Reason != tt.reason {
				t.Errorf("broken at %d (%s), want %d (%s)", b.Index, b.Reason, tt.index, tt.reason)
			}
			if !strings.HasPrefix(b.Message(), "证据链在第") {
				t.Errorf("message %q", b.Message())
			}
		})
	}
}

func TestEvidenceChainValidation(t *testing.T) {
	ok := Evidence{OrderID: 1, Kind: EvidenceNote, Actor: "staff:a", CreatedAt: t0, Content: []byte("x")}
	for name, mut := range map[string]func(*Evidence){
		"no order":     func(e *Evidence) { e.OrderID = 0 },
		"bad kind":     func(e *Evidence) { e.Kind = "video" },
		"no actor":     func(e *Evidence) { e.Actor = "" },
		"empty":        func(e *Evidence) { e.Content = nil },
		"too large":    func(e *Evidence) { e.Content = make([]byte, MaxEvidenceSize+1) },
		"ext w/o hash": func(e *Evidence) { e.Content, e.External = nil, true },
	} {
		e := ok
		mut(&e)
		if _, err := e.Chain(ChainHead{}); ErrorKind(err) != KindInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestExternalEvidence(t *testing.T) {
	file := []byte("ogg opus recording")
	e := Evidence{OrderID: 1, Kind: EvidenceRecording, Actor: "staff:a", CreatedAt: t0, External: true,
		ContentHash: ContentHash(file), Size: int64(len(file)), Ref: "room:abc/audio"}
	head, err := e.Chain(ChainHead{})
	if err != nil {
		t.Fatal(err)
	}
	if b := VerifyChainHead([]Evidence{e}, head); b != nil {
		t.Fatal(b)
	}
	if !VerifyContent(e, file) || VerifyContent(e, []byte("ogg opus recordinG")) {
		t.Error("VerifyContent")
	}
}
