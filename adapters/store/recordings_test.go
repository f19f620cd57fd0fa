package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

func TestRecordingsStored(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migrated(t, tg)
			o, clock := paidOrder(t, db, 1)
			at := clock.Now()
			if err := db.Gorm.WithContext(ctx).Exec(`INSERT INTO calls (room_id, kind, source, state, started_at) VALUES ('r-1', 'video', 'console', 'answered', ?)`, at).Error; err != nil {
				t.Fatal(err)
			}

			rec := &store.Recording{RoomID: "r-1", Folder: "rec-a", OrderID: o.ID, StartedBy: rental.StaffActor("li"), StartedAt: at}
			if err := db.CreateRecording(ctx, rec); err != nil {
				t.Fatal(err)
			}
			dup := &store.Recording{RoomID: "r-1", Folder: "rec-b", StartedBy: rental.StaffActor("li"), StartedAt: at}
			if err := db.CreateRecording(ctx, dup); rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("a second live recording of the room: %v, want conflict", err)
			}
			noOrder := &store.Recording{RoomID: "r-2", Folder: "rec-c", OrderID: 99999, StartedBy: rental.StaffActor("li"), StartedAt: at}
			if err := db.CreateRecording(ctx, noOrder); rental.ErrorKind(err) != rental.KindNotFound {
				t.Errorf("a recording of an order that does not exist: %v, want not found", err)
			}

			// Heads only move forward.
			for _, h := range []struct {
				head string
				n    int
			}{{"h1", 1}, {"h3", 3}, {"h2", 2}} {
				if err := db.RecordingHead(ctx, rec.ID, h.head, h.n); err != nil {
					t.Fatal(err)
				}
			}
			live, err := db.LiveRecording(ctx, "r-1")
			if err != nil || live.Head != "h3" || live.Segments != 3 || live.OrderID != o.ID {
				t.Fatalf("live recording %+v, %v", live, err)
			}
			if err := db.SetRecordingState(ctx, rec.ID, store.RecordingPaused, 1500); err != nil {
				t.Fatal(err)
			}

			sum := strings.Repeat("ab", 32)
			ev := &rental.Evidence{Kind: rental.EvidenceRecording, MediaType: "application/json", Name: "录像", Ref: "recording:1",
				Actor: rental.StaffActor("li"), CreatedAt: at, Content: []byte(`{"manifest_sha256":"` + sum + `"}`)}
			done, err := db.FinishRecording(ctx, rec.ID, store.RecordingDone{
				StoppedAt: at.Add(time.Minute), PausedMS: 1500, Segments: 4, Head: "h4", ManifestSHA256: sum, SizeBytes: 1234,
				Tracks: []store.RecordingTrack{{ID: "c-1/video-1", Kind: "video", Container: "ivf", Size: 1000, SHA256: sum}}, Evidence: ev,
			})
			if err != nil {
				t.Fatal(err)
			}
			if done.State != store.RecordingStopped || done.EvidenceID == 0 || done.Head != "h4" || len(done.Tracks) != 1 || done.Tracks[0].SHA256 != sum {
				t.Errorf("finished recording %+v", done)
			}
			if _, err := db.FinishRecording(ctx, rec.ID, store.RecordingDone{StoppedAt: at}); rental.ErrorKind(err) != rental.KindConflict {
				t.Errorf("finishing twice: %v", err)
			}
			items, head, err := db.Evidence(ctx, o.ID)
			if err != nil || len(items) != 1 || items[0].Kind != rental.EvidenceRecording || items[0].ID != done.EvidenceID {
				t.Fatalf("evidence after finishing: %+v %v", items, err)
			}
			if b := rental.VerifyChainHead(items, head); b != nil {
				t.Errorf("chain: %v", b)
			}
			var recorded bool
			if err := db.Gorm.WithContext(ctx).Raw(`SELECT recorded FROM calls WHERE room_id = 'r-1'`).Scan(&recorded).Error; err != nil || !recorded {
				t.Errorf("calls.recorded = %v, %v", recorded, err)
			}
			// The room may be recorded again now.
			again := &store.Recording{RoomID: "r-1", Folder: "rec-d", StartedBy: rental.StaffActor("li"), StartedAt: at}
			if err := db.CreateRecording(ctx, again); err != nil {
				t.Fatal(err)
			}
			if live, err := db.LiveRecordings(ctx); err != nil || len(live) != 1 || live[0].ID != again.ID {
				t.Errorf("LiveRecordings = %+v, %v", live, err)
			}
			if err := db.FailRecording(ctx, again.ID, store.RecordingInterrupted, "the process stopped", at); err != nil {
				t.Fatal(err)
			}

			list, next, err := db.Recordings(ctx, 0, 0, 1)
			if err != nil || len(list) != 1 || list[0].ID != again.ID || next != again.ID {
				t.Fatalf("first page %+v next %d %v", list, next, err)
			}
			list, next, err = db.Recordings(ctx, 0, next, 1)
			if err != nil || len(list) != 1 || list[0].ID != rec.ID || next != 0 {
				t.Fatalf("second page %+v next %d %v", list, next, err)
			}
			list, _, err = db.Recordings(ctx, o.ID, 0, 10)
			if err != nil || len(list) != 1 || list[0].ID != rec.ID {
				t.Fatalf("the order's recordings %+v %v", list, err)
			}
		})
	}
}
