package wxsim

import (
	"crypto/rsa"
	"strings"

	"github.com/tacklegate/tacklegate/adapters/wxsim/paysim"
)

// Merchant is the WeChat Pay merchant the simulator serves.
type Merchant struct {
	MchID     string
	Serial    string // merchant API certificate serial, as sent in serial_no
	APIv3Key  string // 32 characters
	PublicKey *rsa.PublicKey
}

// AttachPay creates the WeChat Pay simulator for m, on this simulator's
// clock and fault table, serves it under /pay and feeds the page's 支付记录
// panel from it. retryScale compresses the notification retry schedule (1
// is WeChat Pay's real 15 s…6 h). The caller closes the returned server.
func (s *Simulator) AttachPay(m Merchant, retryScale float64) (*paysim.Server, error) {
	pay, err := paysim.New(paysim.Config{
		MchID: m.MchID, AppID: s.cfg.AppID,
		MerchantPublicKey: m.PublicKey, MerchantSerial: m.Serial, APIv3Key: m.APIv3Key,
		Now: s.clock.Now, RetryScale: retryScale, Seed: s.cfg.Seed, Logger: s.log.With("component", "paysim"),
		Fault: func(endpoint string) (paysim.Fault, bool) {
			// API paths are looked up as the gateway sees them ("/pay/v3/…");
			// notification attempts under their own name.
			if strings.HasPrefix(endpoint, "/") {
				endpoint = "/pay" + endpoint
			}
			f, ok := s.FaultFor(endpoint)
			return paysim.Fault{Latency: f.Latency, HTTPStatus: f.HTTPStatus, Drop: f.DropPush}, ok
		},
	})
	if err != nil {
		return nil, err
	}
	s.MountPay(pay.Handler())
	s.SetPaymentsSource(func() any { return pay.Orders() })
	return pay, nil
}
