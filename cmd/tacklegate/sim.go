package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tacklegate/tacklegate/adapters/wechatpay"
	"github.com/tacklegate/tacklegate/adapters/wxsim"
	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
	"github.com/tacklegate/tacklegate/rental"
)

// The demo merchant. The simulator accepts exactly these.
const (
	simMchID    = "1900000109"
	simSerial   = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	simAPIv3Key = "tacklegateSimulatorApiV3Key00032" // 32 characters
)

// simWorld is a running simulator of WeChat, WeCom and WeChat Pay, plus the
// files a gateway needs to talk to it.
type simWorld struct {
	sim         *wxsim.Simulator
	pay         *paysim.Server
	srv         *http.Server
	url         string
	keyFile     string // the merchant's private key (PEM)
	platformPEM string // WeChat Pay's public key (PEM)
}

// startSim starts the simulator on addr ("127.0.0.1:0" for any port). Keys
// live in dir: the merchant key is made once and kept, so a gateway started
// later with the printed settings still matches.
func startSim(addr, dir string, logger *slog.Logger) (*simWorld, error) {
	const op = "startSim"
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindUnavailable, "the simulator cannot listen on "+addr, err)
	}
	w := &simWorld{url: "http://" + ln.Addr().String()}
	fail := func(err error) (*simWorld, error) {
		ln.Close()
		if w.pay != nil {
			w.pay.Close()
		}
		return nil, err
	}
	key, keyFile, err := merchantKey(dir)
	if err != nil {
		return fail(err)
	}
	cfg := wxsim.DefaultConfig()
	cfg.PublicURL = w.url // image PicUrl points back at the simulator
	if w.sim, err = wxsim.New(cfg, logger.With("component", "wxsim")); err != nil {
		return fail(rental.Wrap(op, rental.KindInternal, "cannot build the simulator", err))
	}
	if w.pay, err = w.sim.AttachPay(wxsim.Merchant{MchID: simMchID, Serial: simSerial, APIv3Key: simAPIv3Key, PublicKey: &key.PublicKey}, 1); err != nil {
		return fail(rental.Wrap(op, rental.KindInternal, "cannot build the Pay simulator", err))
	}
	w.keyFile, w.platformPEM = keyFile, filepath.Join(dir, "wechatpay_platform_public_key.pem")
	if err := os.WriteFile(w.platformPEM, w.pay.PlatformPublicKeyPEM(), 0o644); err != nil {
		return fail(rental.Wrap(op, rental.KindUnavailable, "cannot write "+w.platformPEM, err))
	}
	w.srv = &http.Server{Handler: w.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go w.srv.Serve(ln) //nolint:errcheck // ends with close
	return w, nil
}

func (w *simWorld) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	w.srv.Shutdown(ctx) //nolint:errcheck // best effort at exit
	w.pay.Close()
	w.sim.Close() //nolint:errcheck
}

// env lists the TACKLEGATE_* settings that point a gateway at this
// simulator.
func (w *simWorld) env() [][2]string {
	c := wxsim.DefaultConfig()
	return [][2]string{
		{"TACKLEGATE_WECHAT_APP_ID", c.AppID}, {"TACKLEGATE_WECHAT_APP_SECRET", c.AppSecret},
		{"TACKLEGATE_WECHAT_TOKEN", c.Token}, {"TACKLEGATE_WECHAT_AES_KEY", c.EncodingAESKey},
		{"TACKLEGATE_WECHAT_API_BASE", w.url + "/wechat"},
		{"TACKLEGATE_WECOM_CORP_ID", c.CorpID}, {"TACKLEGATE_WECOM_AGENT_ID", strconv.Itoa(c.AgentID)},
		{"TACKLEGATE_WECOM_SECRET", c.CorpSecret}, {"TACKLEGATE_WECOM_TOKEN", c.WeComToken},
		{"TACKLEGATE_WECOM_AES_KEY", c.WeComAESKey}, {"TACKLEGATE_WECOM_API_BASE", w.url + "/wecom"},
		{"TACKLEGATE_WECOM_OAUTH_BASE", w.url + wxsim.PrefixOpen},
		{"TACKLEGATE_WECHATPAY_MCH_ID", simMchID}, {"TACKLEGATE_WECHATPAY_SERIAL_NO", simSerial},
		{"TACKLEGATE_WECHATPAY_PRIVATE_KEY_FILE", w.keyFile}, {"TACKLEGATE_WECHATPAY_API_V3_KEY", simAPIv3Key},
		{"TACKLEGATE_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", w.platformPEM},
		{"TACKLEGATE_WECHATPAY_PLATFORM_SERIAL", w.pay.PlatformSerial()},
		{"TACKLEGATE_WECHATPAY_API_BASE", w.url + "/pay"},
	}
}

// pointAt tells the simulator where the gateway's callbacks are.
func (w *simWorld) pointAt(gatewayBase string) {
	w.sim.SetPushURL(gatewayBase + "/callbacks/wechat")
	w.sim.SetWeComCallbackURL(gatewayBase + "/callbacks/wecom")
}

// merchantKey loads or creates the demo merchant's RSA key.
func merchantKey(dir string) (*rsa.PrivateKey, string, error) {
	const op = "merchantKey"
	path := filepath.Join(dir, "wechatpay_merchant_key.pem")
	if b, err := os.ReadFile(path); err == nil {
		key, err := wechatpay.LoadPrivateKey(b)
		if err != nil {
			return nil, "", rental.Wrap(op, rental.KindInvalid, path+" is not a usable merchant key; delete it to make a new one", err)
		}
		return key, path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", rental.Wrap(op, rental.KindUnavailable, "cannot read "+path, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", rental.Wrap(op, rental.KindInternal, "cannot make a merchant key", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", rental.Wrap(op, rental.KindInternal, "cannot encode the merchant key", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, "", rental.Wrap(op, rental.KindUnavailable, "cannot create "+dir, err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, "", rental.Wrap(op, rental.KindUnavailable, "cannot write "+path, err)
	}
	return key, path, nil
}

func cmdSim(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "sim", "sim [--addr HOST:PORT] [--data DIR] [--gateway URL]",
		"Runs only the simulator of WeChat, WeCom and WeChat Pay, for a gateway started separately.\n"+
			"Prints its base URL and the settings that point a gateway at it.")
	addr := fs.String("addr", "127.0.0.1:9090", "address the simulator listens on")
	dir := fs.String("data", "./data/sim", "folder for the demo merchant's keys")
	gw := fs.String("gateway", "http://127.0.0.1:8080", "the gateway's base URL, where pushes and callbacks are sent")
	if code, done := parseFlags(fs, e, args); done {
		return code
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w, err := startSim(*addr, *dir, logger)
	if err != nil {
		return fail(e, "sim", err)
	}
	defer w.close()
	w.pointAt(*gw)
	fmt.Fprintf(e.stdout, "simulator of WeChat, WeCom and WeChat Pay at %s (Ctrl+C stops it)\n", w.url)
	fmt.Fprintf(e.stdout, "  page        %s/sim\n  control API %s/sim/api/state\n  pushes go to %s/callbacks/wechat and %s/callbacks/wecom\n\n", w.url, w.url, *gw, *gw)
	fmt.Fprintln(e.stdout, "Point a gateway at it with:")
	for _, kv := range w.env() {
		fmt.Fprintf(e.stdout, "  export %s='%s'\n", kv[0], kv[1])
	}
	<-ctx.Done()
	return exitOK
}
