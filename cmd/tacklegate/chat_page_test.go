package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tacklegate/tacklegate/gateway/browsertest"
)

// TestCustomerChatTabInDemo is the customer page and the chat widget
// together, as they ship: a customer signed in on the demo's page opens the
// 客服 tab, writes, and the message is in the conversation staff see; a
// staff member's answer from the console API appears on the page live.
func TestCustomerChatTabInDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	r := start(t, map[string]string{"TACKLEGATE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "demo.db")}, "demo")
	ctx := browsertest.New(t, browsertest.Options{Timeout: 2 * time.Minute})
	waitFor := func(what, cond string) { t.Helper(); pageWait(t, ctx, what, cond) }
	const question = "鱼竿的第三节拔不出来了，怎么办？"
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/"), chromedp.WaitVisible("#login-sim"), chromedp.Click("#login-sim"),
		chromedp.WaitVisible(`#tabs [data-tab="chat"]`), chromedp.Click(`#tabs [data-tab="chat"]`),
		chromedp.WaitVisible("#view-chat .tgchat textarea")); err != nil {
		t.Fatal(err)
	}
	waitFor("the presence line", `/客服(在线|暂离|离线)/.test(document.querySelector("#view-chat .tgchat-presence").textContent)`)
	if err := chromedp.Do(ctx, chromedp.SendKeys("#view-chat .tgchat textarea", question),
		chromedp.Click(`#view-chat .tgchat-input button[type="submit"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("the customer's bubble", fmt.Sprintf(`document.querySelector("#view-chat .tgchat-list").textContent.includes(%q)`, question))

	// Staff find it in the conversation and answer from the console API.
	m := regexp.MustCompile(`simulator\s+(http://\S+)/sim`).FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Fatalf("banner names no simulator:\n%s", r.stdout)
	}
	var oauth struct{ Code string }
	postJSON(t, m[1]+"/sim/api/staff/laowang/oauth-code", nil, &oauth)
	var staff struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if st := callAPI(t, "POST", r.base+"/api/v1/auth/wecom", "", map[string]string{"code": oauth.Code}, &staff); st != 200 {
		t.Fatalf("staff login: %d", st)
	}
	tok := staff.Tokens.AccessToken
	type message struct {
		Direction string `json:"direction"`
		Text      string `json:"text"`
	}
	var convID int64
	deadline := time.Now().Add(20 * time.Second)
	for convID == 0 && time.Now().Before(deadline) {
		var list struct {
			Conversations []struct {
				ID int64 `json:"id"`
			} `json:"conversations"`
		}
		callAPI(t, "GET", r.base+"/api/v1/staff/conversations?live=1", tok, nil, &list)
		for _, c := range list.Conversations {
			var tr struct {
				Messages []message `json:"messages"`
			}
			callAPI(t, "GET", fmt.Sprintf("%s/api/v1/staff/conversations/%d", r.base, c.ID), tok, nil, &tr)
			for _, msg := range tr.Messages {
				if msg.Text == question {
					convID = c.ID
				}
			}
		}
		if convID == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if convID == 0 {
		t.Fatal("no conversation staff can see holds the customer's message")
	}
	const answer = "先别用力拔，拧半圈松一松；不行就拿到店里，我们来处理。"
	var out map[string]any
	if st := callAPI(t, "POST", fmt.Sprintf("%s/api/v1/staff/conversations/%d/messages", r.base, convID), tok, map[string]string{"text": answer}, &out); st != 201 {
		t.Fatalf("staff reply: %d %v", st, out)
	}
	waitFor("the staff answer on the customer's page", fmt.Sprintf(`document.querySelector("#view-chat .tgchat-list").textContent.includes(%q)`, answer))
	if got, _ := browsertest.Eval[string](ctx, `document.querySelector("#view-chat .tgchat-list").textContent`); strings.Count(got, question) != 1 {
		t.Errorf("the customer's message shows %d times:\n%s", strings.Count(got, question), got)
	}

	// The customer also asks for a video call (nobody answers it yet); the
	// owner's KPIs count the conversation, its messages, the first response
	// and the call.
	custTok, err := browsertest.Eval[string](ctx, `JSON.parse(sessionStorage.getItem("tg.customer")).access_token`)
	if err != nil || custTok == "" {
		t.Fatalf("the page's customer session: %q %v", custTok, err)
	}
	var call map[string]any
	if st := callAPI(t, "POST", r.base+"/api/v1/calls", custTok, map[string]string{"kind": "video", "purpose": "guidance"}, &call); st != 200 {
		t.Fatalf("start a call: %d %v", st, call)
	}
	var kpis struct {
		Calls struct {
			Started int `json:"started"`
		} `json:"calls"`
		Conversations struct {
			Opened    int `json:"opened"`
			Responded int `json:"responded"`
			Messages  int `json:"messages"`
		} `json:"conversations"`
	}
	if st := callAPI(t, "GET", r.base+"/api/v1/owner/kpis", ownerToken(t, r), nil, &kpis); st != 200 {
		t.Fatalf("owner KPIs: %d", st)
	}
	if kpis.Calls.Started != 1 || kpis.Conversations.Opened != 1 || kpis.Conversations.Responded != 1 || kpis.Conversations.Messages < 2 {
		t.Errorf("owner KPIs after one chat and one call: %+v", kpis)
	}
}
