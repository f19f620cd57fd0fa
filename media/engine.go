package media

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// The codecs a room speaks. One video codec keeps forwarding simple: every
// subscriber can take every publisher's packets unchanged. VP8 decodes in
// every browser WeChat's web-view and WeCom's browser are built on (Chromium
// XWeb, WKWebView since iOS 12.2). RTX is left out so retransmissions use the
// original SSRC and the SFU's NACK responder answers subscribers itself.
var (
	codecOpus = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}
	codecVP8 = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		PayloadType:        96,
	}
)

// apiOptions are what differs between one participant's PeerConnection and
// another's.
type apiOptions struct {
	log *slog.Logger
	// onEstimator receives this PeerConnection's send-side bandwidth
	// estimator (GCC over TWCC feedback from the subscriber).
	onEstimator func(cc.BandwidthEstimator)
	counters    *rtcpCounters
}

// newAPI builds a pion API for one PeerConnection. It is per connection,
// not shared, because the congestion controller hands out its estimator
// through a factory callback that only a per-connection registry can tie
// to the right participant.
func newAPI(cfg *Config, o apiOptions) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(codecOpus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	// Registered even for voice calls. Without a video codec pion would
	// answer a video m-line with port 0 and no mid, and then fail every
	// later CreateOffer ("excessive retries"); voice calls instead mark
	// video inactive in the SDP they send (see inactivateVideo).
	if err := me.RegisterCodec(codecVP8, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}

	logs := pionLogs{o.log}
	reg := &interceptor.Registry{}
	if o.counters != nil {
		// First, so it is next to the wire in both directions.
		reg.Add(o.counters)
	}

	// Order matters: outgoing packets pass the interceptors last-added
	// first, so the congestion controller (added first) sees each packet
	// last, after the TWCC sequence number is stamped, retransmissions
	// included.
	bwe, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(cfg.InitialBitrate),
			// Forwarded media is already paced by its publisher; a second
			// pacer would add latency and a goroutine per connection.
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
			gcc.WithLoggerFactory(logs),
		)
	})
	if err != nil {
		return nil, err
	}
	bwe.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) {
		if o.onEstimator != nil {
			o.onEstimator(e)
		}
	})
	reg.Add(bwe)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, reg); err != nil {
		return nil, err
	}
	// The responder keeps each forwarded stream's last packets for
	// retransmission. pion's default (1024 packets) is 20 s of 360p video
	// and about 1.2 MiB per stream once full — most of a participant's
	// memory. 256 packets still cover 5 s at 360p and over a second at
	// 720p/2 Mbit/s, far beyond any round trip a NACK can repair in time.
	if err := webrtc.ConfigureNackWithOptions(me, reg,
		[]nack.GeneratorOption{nack.WithGeneratorLoggerFactory(logs)},
		nack.WithResponderLoggerFactory(logs), nack.ResponderSize(nackHistory)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReportsWithOptions(reg,
		[]report.ReceiverOption{report.WithReceiverLoggerFactory(logs)},
		report.WithSenderLoggerFactory(logs)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}
	// TWCC feedback to publishers, so a browser's own estimator can adapt
	// what it sends us.
	if err := webrtc.ConfigureTWCCSenderWithOptions(me, reg, twcc.WithLoggerFactory(logs)); err != nil {
		return nil, err
	}
	// Subscribers ask for keyframes with PLI (registered with NACK); FIR
	// too, for endpoints that only speak that.
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "ccm", Parameter: "fir"}, webrtc.RTPCodecTypeVideo)

	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, cfg.ICEKeepaliveInterval)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	// A server has no use for mDNS: it cannot resolve a browser's .local
	// names across the internet (peer-reflexive candidates cover them) and
	// should not announce its own.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, err
		}
	}
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

// pionLogs routes pion's logging into slog. pion's Info is routine chatter
// and becomes Debug; its Warn and Error are usually a peer going away and
// become Warn, not Error: they are not our failures.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) logf(level slog.Level, format string, args ...any) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (p pionLogger) Trace(string)          {}
func (p pionLogger) Tracef(string, ...any) {}
func (p pionLogger) Debug(msg string)      { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Debugf(f string, a ...any) {
	p.logf(slog.LevelDebug, f, a...)
}
func (p pionLogger) Info(msg string)          { p.logf(slog.LevelDebug, "%s", msg) }
func (p pionLogger) Infof(f string, a ...any) { p.logf(slog.LevelDebug, f, a...) }
func (p pionLogger) Warn(msg string)          { p.logf(slog.LevelWarn, "%s", msg) }
func (p pionLogger) Warnf(f string, a ...any) { p.logf(slog.LevelWarn, f, a...) }
func (p pionLogger) Error(msg string)         { p.logf(slog.LevelWarn, "%s", msg) }
func (p pionLogger) Errorf(f string, a ...any) {
	p.logf(slog.LevelWarn, f, a...)
}

// nackHistory is how many packets per stream the SFU keeps for
// retransmission (a power of two, as pion requires).
const nackHistory = 256
