package wxsim

import (
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

func faultPattern(t *testing.T, seed int64) []int {
	t.Helper()
	s := newSim(t, func(c *Config) { c.Seed = seed })
	tok := mpToken(t, s)
	s.Faults().Set(EndpointCustomSend, Fault{Errcode: errSystemBusy, Probability: 0.5})
	var got []int
	for range 30 {
		got = append(got, httpPost(t, withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok), textMsg("nobody", "x")).code())
	}
	return got
}

func TestFaultsReproducibleWithSeed(t *testing.T) {
	a, b, other := faultPattern(t, 7), faultPattern(t, 7), faultPattern(t, 8)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("different seeds gave the same 30 draws")
	}
	if !slices.Contains(a, errSystemBusy) || !slices.Contains(a, errInvalidOpenID) {
		t.Errorf("p=0.5 over 30 calls should both fire and not fire: %v", a)
	}
}

func TestFaultKinds(t *testing.T) {
	s := newSim(t, nil)
	tok := mpToken(t, s)
	u := withToken(s.WeChatBase(), "/cgi-bin/message/custom/send", tok)
	call := func() (int, string) {
		resp, err := http.Post(u, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	s.Faults().Set(EndpointCustomSend, Fault{HTTPStatus: http.StatusBadGateway, Times: 2})
	for i := range 2 {
		if st, _ := call(); st != http.StatusBadGateway {
			t.Fatalf("call %d: HTTP %d, want 502", i+1, st)
		}
	}
	if st, body := call(); st != http.StatusOK {
		t.Fatalf("after Times ran out: HTTP %d %s", st, body)
	}
	if len(s.Faults().List()) != 0 {
		t.Error("used-up fault still listed")
	}

	s.Faults().Set(EndpointCustomSend, Fault{Latency: 150 * time.Millisecond, Times: 1})
	start := time.Now()
	call()
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("latency fault took %v", d)
	}

	s.Faults().Set(EndpointCustomSend, Fault{ExpireToken: true, Times: 1})
	if got := probeMP(t, s, tok); got != errTokenExpired {
		t.Errorf("ExpireToken: %d, want 42001", got)
	}
	if got := probeMP(t, s, tok); got != errTokenExpired {
		t.Errorf("token stays expired: %d", got)
	}

	s.Faults().Set("/wecom/*", Fault{Errcode: errSystemBusy})
	wantCode(t, "prefix fault", httpGet(t, s.WeComBase()+"/cgi-bin/gettoken?corpid=x&corpsecret=y"), errSystemBusy)
	s.Faults().Set(EndpointWeComToken, Fault{Errcode: 45009})
	wantCode(t, "exact beats prefix", httpGet(t, s.WeComBase()+"/cgi-bin/gettoken?corpid=x&corpsecret=y"), 45009)
	s.Faults().Clear("")

	s.Faults().Set("/pay/*", Fault{HTTPStatus: 500, Times: 1})
	if f, fired := s.FaultFor("/pay/v3/pay/transactions/jsapi"); !fired || f.HTTPStatus != 500 {
		t.Errorf("FaultFor: %+v %v", f, fired)
	}
	if _, fired := s.FaultFor("/pay/v3/pay/transactions/jsapi"); fired {
		t.Error("Times:1 fault fired twice")
	}
}
