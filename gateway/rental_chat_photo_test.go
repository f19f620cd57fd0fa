package gateway

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

// TestInspectionPhotoFromChat: the customer sent a photo of a scratch in
// chat; staff take it into the order's evidence and the pickup inspection.
// The copy is the same picture, chained with where it came from; photos
// that are not the customer's, not pictures, or whose transcript no longer
// verifies are refused.
func TestInspectionPhotoFromChat(t *testing.T) {
	for _, tg := range storetest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			e := newRentalEnv(t, tg, true)
			ctx := context.Background()
			rod := e.stock(t, "矶钓竿 5.3m", rental.CategoryRod, 3500, 60000, 1, "海钓")
			alice := e.customerLogin(t, "o-chat-alice")
			bob := e.customerLogin(t, "o-chat-bob")
			memberOf := func(tok string) rental.MemberID {
				var me struct{ Member struct{ ID rental.MemberID } }
				e.api(t, "GET", "/api/v1/me", tok, nil, &me)
				return me.Member.ID
			}
			o := e.placeOrder(t, alice, rod, 1, 1)
			e.customerPays(t, e.startPay(t, alice, o.ID))
			eventually(t, "paid", func() bool { return e.order(t, alice, o.ID).State == rental.StatePaid })

			photo := pngPhoto(t, 200)
			chat := func(member rental.MemberID, openid string) rental.ConversationID {
				t.Helper()
				var id rental.ConversationID
				t0 := e.sim.Clock().Now()
				err := e.db.InBridgeTx(ctx, func(tx *store.BridgeTx) error {
					c := &rental.Conversation{MemberID: member, OpenID: openid, State: rental.ConversationOpen, OpenedAt: t0}
					if err := tx.OpenConversation(c); err != nil {
						return err
					}
					for i, m := range []rental.ChatMessage{
						{Direction: rental.ChatIn, Kind: rental.ChatText, Author: rental.CustomerAuthor(member), Text: "竿梢这里有道划痕，拍给你们看", CreatedAt: t0},
						{Direction: rental.ChatIn, Kind: rental.ChatImage, Author: rental.CustomerAuthor(member), Media: photo, MediaType: "image/png", CreatedAt: t0.Add(time.Second)},
						{Direction: rental.ChatOut, Kind: rental.ChatImage, Author: rental.StaffAuthor("laowang"), Media: pngPhoto(t, 10), MediaType: "image/png", CreatedAt: t0.Add(time.Minute)},
					} {
						m.Upstream = fmt.Sprintf("test:%s:%d", openid, i)
						if err := tx.Append(c, &m); err != nil {
							return err
						}
					}
					id = c.ID
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			aliceChat := chat(memberOf(alice), "o-chat-alice")
			bobChat := chat(memberOf(bob), "o-chat-bob")

			path := fmt.Sprintf("/api/v1/staff/orders/%d/photos/from-chat", o.ID)
			var got photoAnswer
			var raw struct {
				Photos []struct{ Ref string }
			}
			req := map[string]any{"conversation_id": rental.ConversationCode(aliceChat), "seq": 2, "caption": "竿梢划痕"}
			if st := e.api(t, "POST", path, e.staff, req, &got); st != 201 || len(got.Photos) != 1 || got.Photos[0].SHA256 != hexSHA(photo) {
				t.Fatalf("from chat: %d %+v", st, got)
			}
			e.api(t, "POST", path, e.staff, req, &raw) // the same photo may be taken twice (pickup and return)
			if len(raw.Photos) != 1 || !strings.HasPrefix(raw.Photos[0].Ref, fmt.Sprintf("chat:%s/2 media_sha256:%s link:", rental.ConversationCode(aliceChat), hexSHA(photo))) {
				t.Errorf("ref %+v", raw.Photos)
			}
			for name, c := range map[string]struct {
				body map[string]any
				tok  string
				want int
			}{
				"a text message":       {map[string]any{"conversation_id": fmt.Sprint(aliceChat), "seq": 1}, e.staff, 400},
				"the shop's own photo": {map[string]any{"conversation_id": fmt.Sprint(aliceChat), "seq": 3}, e.staff, 400},
				"no such message":      {map[string]any{"conversation_id": fmt.Sprint(aliceChat), "seq": 9}, e.staff, 404},
				"another customer":     {map[string]any{"conversation_id": fmt.Sprint(bobChat), "seq": 2}, e.staff, 409},
				"no conversation":      {map[string]any{"seq": 2}, e.staff, 400},
				"the customer":         {map[string]any{"conversation_id": fmt.Sprint(aliceChat), "seq": 2}, alice, 403},
			} {
				if st := e.api(t, "POST", path, c.tok, c.body, nil); st != c.want {
					t.Errorf("%s: %d, want %d", name, st, c.want)
				}
			}

			// The photo goes into the pickup inspection like an upload.
			paid := e.order(t, alice, o.ID)
			var picked orderAnswer
			if st := e.api(t, "POST", fmt.Sprintf("/api/v1/staff/orders/%d/pickup", o.ID), e.staff, map[string]any{"notes": "顾客指出的划痕已记录",
				"units": []map[string]any{{"unit_id": paid.Lines[0].UnitID, "condition": rental.ConditionWorn, "notes": "竿梢划痕", "photos": []rental.EvidenceID{got.Photos[0].ID}}}},
				&picked); st != 200 {
				t.Fatalf("pickup: %d %+v", st, picked.Error)
			}
			var ev evidenceReport
			if st := e.api(t, "GET", fmt.Sprintf("/api/v1/orders/%d/evidence", o.ID), alice, nil, &ev); st != 200 || !ev.Verification.OK {
				t.Fatalf("evidence: %d %+v", st, ev.Verification)
			}
			var found bool
			for _, it := range ev.Items {
				found = found || (it.ID == got.Photos[0].ID && strings.HasPrefix(it.Ref, "chat:"+rental.ConversationCode(aliceChat)+"/2 "))
			}
			if !found {
				t.Errorf("the chained item does not name its source: %+v", ev.Items)
			}
			// Served to the customer as the same picture.
			r := httptest.NewRequest("GET", fmt.Sprintf("/api/v1/orders/%d/evidence/%d", o.ID, got.Photos[0].ID), nil)
			r.Header.Set("Authorization", "Bearer "+alice)
			if _, img := do(t, e.srv, r); hexSHA(img) != hexSHA(photo) {
				t.Error("the evidence copy is not the customer's picture")
			}

			// A transcript altered at rest before the photo is no source of
			// evidence any more. (The database refuses edits of chat
			// messages: whoever alters one drops the guard first.)
			drop := []string{"DROP TRIGGER chat_messages_no_update"}
			if e.db.Dialect == store.Postgres {
				drop = []string{"DROP TRIGGER chat_messages_no_change ON chat_messages"}
			}
			for _, q := range drop {
				if err := e.db.Gorm.Exec(q).Error; err != nil {
					t.Fatal(err)
				}
			}
			var sealed []byte
			e.db.Gorm.Raw("SELECT body FROM chat_messages WHERE conversation_id = ? AND seq = 1", aliceChat).Row().Scan(&sealed) //nolint:errcheck
			if len(sealed) == 0 {
				t.Fatal("no sealed text found")
			}
			sealed[len(sealed)-1] ^= 1
			if err := e.db.Gorm.Exec("UPDATE chat_messages SET body = ? WHERE conversation_id = ? AND seq = 1", sealed, aliceChat).Error; err != nil {
				t.Fatal(err)
			}
			var refused answerError
			if st := e.api(t, "POST", path, e.staff, req, &refused); st != 409 || !strings.Contains(refused.Error.Message, "校验失败") {
				t.Errorf("from an altered transcript: %d %+v", st, refused)
			}
		})
	}
}
