package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/adapters/wechat/msgcrypt"
	"github.com/tacklegate/tacklegate/rental"
)

// BenchmarkCallbackIngest measures a customer message from the simulator's
// side to the database: sign and encrypt (silenceper, as the simulator
// does), POST over loopback, verify, decrypt, parse, persist, answer.
// "bare" is the gateway's crypto and parsing alone on the same messages, so
// the cost of HTTP and the database shows beside it in one run:
//
//	go test ./gateway -run '^$' -bench CallbackIngest -benchtime 3s
func BenchmarkCallbackIngest(b *testing.B) {
	var seq atomic.Int64
	seq.Store(time.Now().UnixNano() / 1000)
	next := func(now time.Time) (query, body string) {
		id := seq.Add(1)
		plain := fmt.Sprintf("<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[o-bench-%d]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[请问鲫鱼竿怎么租？押金多少？]]></Content><MsgId>%d</MsgId></xml>", id%500, now.Unix(), id)
		enc, err := util.EncryptMsg([]byte(util.RandomStr(16)), []byte(plain), mpAppID, mpAESKey)
		if err != nil {
			b.Fatal(err)
		}
		ts, nonce := strconv.FormatInt(now.Unix(), 10), util.RandomStr(10)
		q := url.Values{"signature": {util.Signature(mpToken, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
			"encrypt_type": {"aes"}, "msg_signature": {util.Signature(mpToken, ts, nonce, string(enc))}}
		return q.Encode(), "<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><Encrypt><![CDATA[" + string(enc) + "]]></Encrypt></xml>"
	}

	b.Run("bare-verify-decrypt-parse", func(b *testing.B) {
		c, _ := msgcrypt.New(mpToken, mpAESKey, mpAppID)
		type msg struct{ ts, nonce, sig, msgSig, body string }
		msgs := make([]msg, 1024)
		for i := range msgs {
			q, body := next(time.Now())
			v, _ := url.ParseQuery(q)
			msgs[i] = msg{v.Get("timestamp"), v.Get("nonce"), v.Get("signature"), v.Get("msg_signature"), body}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m := msgs[i%len(msgs)]
			if err := c.Verify(m.sig, m.ts, m.nonce); err != nil {
				b.Fatal(err)
			}
			env, err := wechat.ParseEnvelope([]byte(m.body))
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Verify(m.msgSig, m.ts, m.nonce, env.Encrypt); err != nil {
				b.Fatal(err)
			}
			plain, err := c.Decrypt(env.Encrypt)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := wechat.ParsePush(plain); err != nil {
				b.Fatal(err)
			}
		}
	})

	for _, tg := range storetest.Targets() {
		b.Run("http-"+tg.Name, func(b *testing.B) {
			db, err := store.Open(context.Background(), tg.Fresh(b), store.Options{CreateDir: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(context.Background()); err != nil {
				b.Fatal(err)
			}
			if err := db.UseDataKey(context.Background(), []byte("0123456789abcdef0123456789abcdef")); err != nil {
				b.Fatal(err)
			}
			mp, _ := msgcrypt.New(mpToken, mpAESKey, mpAppID)
			s := New(Options{BodyLimit: 1 << 20, Callbacks: &Callbacks{WeChat: mp, MaxSkew: 5 * time.Minute, Inbound: db}})
			base := startHTTPForBench(b, s)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			before, _ := db.CountInbound(context.Background(), rental.ChannelWeChat)
			b.SetParallelism(8) // 8×GOMAXPROCS senders: WeChat pushes arrive concurrently
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					q, body := next(time.Now())
					resp, err := client.Post(base+"/callbacks/wechat?"+q, "text/xml", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			after, _ := db.CountInbound(context.Background(), rental.ChannelWeChat)
			if got := after - before; got != int64(b.N) {
				b.Fatalf("stored %d of %d messages", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func startHTTPForBench(b *testing.B, s *Server) string {
	b.Helper()
	ln, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln) //nolint:errcheck
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx) //nolint:errcheck
	})
	return "http://" + ln.Addr().String()
}
