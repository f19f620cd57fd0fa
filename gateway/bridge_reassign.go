package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Reassignment after a no-reply timeout (BridgeOptions.ReassignAfter): a
// conversation whose customer has waited that long since their last
// message, with no staff answer since, and which its staff member has had
// for at least as long, goes to the least-loaded other staff member who
// can take it now. Both are told in WeCom; the new one gets the last few
// messages. When nobody else can take it, it stays. The clock is the
// bridge's (the simulator's in tests).

// Reassign moves the conversations that waited too long; Run calls it.
func (b *Bridge) Reassign(ctx context.Context) int {
	d := b.opts.ReassignAfter
	if d <= 0 {
		return 0
	}
	ids, err := b.db.Unanswered(ctx, b.now().Add(-d), 50)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Error("bridge: cannot look for unanswered conversations", "error", err)
		}
		return 0
	}
	moved := 0
	for _, id := range ids {
		var did bool
		err := b.inTx(ctx, "reassign"+strconv.FormatInt(int64(id), 10)+":"+strconv.FormatInt(b.now().Unix(), 10), func(t *btx) error {
			did = false
			conv, err := t.Conversation(id)
			if err != nil {
				return err
			}
			waited := t.now.Sub(conv.LastCustomerAt)
			if conv.State != rental.ConversationAssigned || waited < d || t.now.Sub(conv.AssignedAt) < d ||
				(!conv.LastStaffAt.IsZero() && !conv.LastStaffAt.Before(conv.LastCustomerAt)) {
				return nil // answered or moved meanwhile
			}
			loads, err := t.StaffLoads()
			if err != nil {
				return err
			}
			from := conv.Assignee
			for i := range loads {
				if loads[i].UserID == from {
					loads[i].OnDuty = false
				}
			}
			a := rental.ChooseStaff(loads, "", "", b.opts.MaxOpen)
			if a.UserID == "" {
				return nil
			}
			to, err := t.StaffMember(a.UserID)
			if err != nil {
				return err
			}
			fromName := from
			if sm, err := t.StaffMember(from); err == nil {
				fromName = bridgeStaffName(sm)
				if sm.Current == conv.ID {
					if err := t.SetCurrent(from, 0); err != nil {
						return err
					}
				}
			}
			mins := int(waited.Round(time.Minute) / time.Minute)
			if err := t.handOver(conv, to, fmt.Sprintf("顾客已等待 %d 分钟未获回复，已从%s转给你", mins, fromName)); err != nil {
				return err
			}
			did = true
			return t.notify([]string{from}, fmt.Sprintf("%s 顾客等了 %d 分钟没有回复，已转给%s。", rental.StaffTag(conv.ID, t.label(conv)), mins, bridgeStaffName(to)))
		})
		if err != nil {
			b.log.Error("bridge: reassignment failed", "conversation", rental.ConversationCode(id), "error", err)
			continue
		}
		if did {
			moved++
			b.log.Info("bridge: conversation reassigned after no reply", "conversation", rental.ConversationCode(id))
		}
	}
	return moved
}

// reassignEvery is how often Run looks: every ten polls (5 s by default),
// or a tenth of the timeout when that is shorter.
func (b *Bridge) reassignEvery() time.Duration {
	return min(10*b.opts.Poll, b.opts.ReassignAfter/10)
}

// Retain applies the retention policy (BridgeOptions.RetainFor): the
// content of conversations resolved before now − RetainFor is destroyed by
// shredding their keys; their chains stay verifiable.
func (b *Bridge) Retain(ctx context.Context) (store.RetentionResult, error) {
	var total store.RetentionResult
	if b.opts.RetainFor <= 0 {
		return total, nil
	}
	reason := fmt.Sprintf("retention: resolved more than %d days ago", int(b.opts.RetainFor/(24*time.Hour)))
	for {
		res, err := b.db.ShredConversations(ctx, b.now().Add(-b.opts.RetainFor), reason, 200)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Error("bridge: retention failed", "error", err)
			}
			return total, err
		}
		total.Shredded = append(total.Shredded, res.Shredded...)
		total.Legacy, total.Payloads = res.Legacy, total.Payloads+res.Payloads
		if len(res.Shredded) < 200 {
			break
		}
	}
	if len(total.Shredded) > 0 || total.Payloads > 0 {
		b.log.Info("bridge: retention destroyed old conversations' content", "conversations", len(total.Shredded), "callbacks", total.Payloads, "kept_legacy", total.Legacy)
	}
	return total, nil
}
