package wxsim

import (
	"encoding/base64"
	"fmt"
	"time"
)

// Push modes of the mini-program message push, as chosen in the mini-program
// console (消息推送 → 加密方式).
const (
	PushSafe       = "safe"       // 安全模式: only ToUserName + Encrypt, msg_signature
	PushPlaintext  = "plaintext"  // 明文模式
	PushCompatible = "compatible" // 兼容模式: plaintext fields and Encrypt side by side
)

// Push data formats (消息推送 → 数据格式).
const (
	FormatXML  = "xml"
	FormatJSON = "json"
)

// Config describes the accounts the simulator plays and the rules it applies.
// Zero values in Rules and Push are replaced by the documented defaults.
type Config struct {
	// Mini-program (api.weixin.qq.com).
	AppID          string
	AppSecret      string
	OriginalID     string // gh_… — ToUserName of every push
	Token          string // message-push token (3–32 chars)
	EncodingAESKey string // 43 chars
	PushURL        string // the gateway's /callbacks/wechat; empty: pushes are recorded, not sent
	PushFormat     string // FormatXML (default) or FormatJSON
	PushMode       string // PushSafe (default), PushPlaintext or PushCompatible

	// WeCom self-built app (qyapi.weixin.qq.com).
	CorpID           string
	CorpSecret       string
	AgentID          int
	WeComToken       string
	WeComAESKey      string
	WeComCallbackURL string   // the gateway's /callbacks/wecom; empty: recorded, not sent
	StaffUserIDs     []string // the corp's members visible to the app; anyone else is an invalid recipient

	// SubscribeTemplates maps a template_id to its keyword names ("thing1",
	// "time2", …). The name's letters before the trailing digits select the
	// value rule (thing, time, amount, …).
	SubscribeTemplates map[string][]string

	// KFAccounts are the corp's 微信客服 accounts. Every member in
	// StaffUserIDs is a servicer (接待人员) of each, "receiving" at start.
	// kf APIs accept the app's access token (the app is configured under
	// 微信客服 → 可调用接口的应用).
	KFAccounts []KFAccount

	// Customers are created up front (Login also creates them on demand).
	Customers []Customer

	// PublicURL is the simulator's own base URL, used in PicUrl of pushed
	// images. Start fills it in; set it when mounting Handler elsewhere.
	PublicURL string

	Seed int64            // seeds fault randomness so a failing run can be replayed
	Now  func() time.Time // base of the Clock; time.Now when nil

	Rules  Rules
	Push   PushSettings
	Quotas map[string]Quota // endpoint → limits; nil: DefaultQuotas()
}

// Rules holds the timing and counting rules of the real servers. They are
// values rather than constants because several are [unconfirmed] or changed
// over the years (e.g. the reply quota was 3 before it was 5).
type Rules struct {
	TokenTTL           time.Duration // expires_in of every access token (7200 s)
	TokenOverlap       time.Duration // /cgi-bin/token: how long the previous token survives a new one (5 min)
	StableRotateBefore time.Duration // stable_token: a fresh token is issued this long before expiry (5 min)
	StableForceGap     time.Duration // stable_token force_refresh: minimum spacing (30 s)
	StableForcePerDay  int           // stable_token force_refresh: per day (20)
	CodeTTL            time.Duration // js_code, phone code, OAuth code (5 min)
	ReplyWindow        time.Duration // CS window after a user message (48 h)
	ReplyQuota         int           // CS sends per user message (5)
	EnterWindow        time.Duration // CS window after user_enter_tempsession (1 min)
	EnterQuota         int           // CS sends per enter event (2)
	MediaTTL           time.Duration // temporary media lifetime (3 days)
	WeComPerUserMinute int           // app messages per member per minute before silent drops (30)
	WeComPerUserHour   int           // … per hour (1000)
	BadSecretCode      int           // mini-program token calls with a wrong secret: 40125 (older servers: 40001)
	UsedCodeCode       int           // js_code used twice: 40163 (some docs: 40029)

	// 微信客服 (kf). The synchronous errcodes are in the 95xxx range but
	// only partly documented [unconfirmed]; each case has one value here.
	KFSyncTokenTTL   time.Duration // Token of a kf_msg_or_event callback (10 min)
	KFWelcomeCodeTTL time.Duration // welcome_code and the end-of-session code (20 s)
	KFStateCodeTTL   time.Duration // msg_code of "queued" / "taken" (48 h)
	KFCountLimitCode int           // send_msg over 5 per customer message (95001)
	KFTimeLimitCode  int           // send_msg more than 48 h after the customer's last message (95002)
	KFStateCode      int           // send_msg in a session state other than 0/1 (95018)
	KFTransitionCode int           // service_state/trans not allowed from the current state (95016)
	KFServicerCode   int           // trans to 3 with a servicer who is not receiving (95014)
	KFMsgTokenCode   int           // sync_msg with an unknown or expired token (95007)
	KFEventCodeCode  int           // send_msg_on_event with a bad, used or stale code (40029)
	KFStrictEnd      bool          // forbid ending (→4) from states 0/1/2 through the API
}

// DefaultRules returns the rules as documented today.
func DefaultRules() Rules {
	return Rules{
		TokenTTL:           7200 * time.Second,
		TokenOverlap:       5 * time.Minute,
		StableRotateBefore: 5 * time.Minute,
		StableForceGap:     30 * time.Second,
		StableForcePerDay:  20,
		CodeTTL:            5 * time.Minute,
		ReplyWindow:        48 * time.Hour,
		ReplyQuota:         5,
		EnterWindow:        time.Minute,
		EnterQuota:         2,
		MediaTTL:           72 * time.Hour,
		WeComPerUserMinute: 30,
		WeComPerUserHour:   1000,
		BadSecretCode:      errInvalidAppSecret,
		UsedCodeCode:       errCodeUsed,
		KFSyncTokenTTL:     10 * time.Minute,
		KFWelcomeCodeTTL:   20 * time.Second,
		KFStateCodeTTL:     48 * time.Hour,
		KFCountLimitCode:   95001,
		KFTimeLimitCode:    95002,
		KFStateCode:        95018,
		KFTransitionCode:   95016,
		KFServicerCode:     95014,
		KFMsgTokenCode:     95007,
		KFEventCodeCode:    errInvalidCode,
	}
}

// PushSettings controls how the simulator calls the gateway back.
type PushSettings struct {
	Timeout    time.Duration // per attempt (5 s, as WeChat)
	Attempts   int           // in total (3)
	RetryDelay time.Duration // wall-clock pause between attempts (0: retry at once)
}

// Quota is a per-endpoint call budget; zero means unlimited. Windows are
// calendar minutes and Beijing-time days of the simulator clock.
type Quota struct {
	PerMinute int `json:"per_minute"`
	PerDay    int `json:"per_day"`
}

// DefaultQuotas are the documented limits of the token endpoints. Business
// endpoints have undocumented or very high limits and are unlimited unless
// configured.
func DefaultQuotas() map[string]Quota {
	return map[string]Quota{
		EndpointToken:       {PerDay: 2000},
		EndpointStableToken: {PerMinute: 10000, PerDay: 500000},
	}
}

// Demo subscribe-message template ids of DefaultConfig.
const (
	DemoTemplateReturnReminder = "tgRETURNreminder0000000000000000000000000001" // 归还提醒
	DemoTemplateDepositRefund  = "tgDEPOSITrefund00000000000000000000000000002" // 押金退还通知
)

// DemoOpenKfID is the 微信客服 account of DefaultConfig.
const DemoOpenKfID = "wkTackleGateDemoKF00000000000001"

// DemoCustomerOpenID is the customer DefaultConfig creates.
const DemoCustomerOpenID = "oTKgate_demo_customer_000001"

// DefaultConfig returns deterministic demo credentials. They are not secret:
// they only ever authenticate against this simulator.
func DefaultConfig() Config {
	return Config{
		AppID:          "wx7a1c9e3f5b2d4086",
		AppSecret:      "20e8cdb5b4093e18eb565f0a0c148e44",
		OriginalID:     "gh_7ac1e5f0d9b2",
		Token:          "tacklegatesim",
		EncodingAESKey: "4LweWDNZMvWLjbucYn3uUF0QWX+lXZRYdAVrpNZCIII",
		PushFormat:     FormatXML,
		PushMode:       PushSafe,

		CorpID:       "ww8c1d5e7f9a0b2c3d",
		CorpSecret:   "da1f0b8c5447f27c47881675bfa86c10-tacklegate",
		AgentID:      1000002,
		WeComToken:   "tacklegatework",
		WeComAESKey:  "qKPPYYj71NA312hz2I5Us1Fgoa8dgL1RSb6P8P9Lgp4",
		StaffUserIDs: []string{"laowang", "xiaoli", "ahua"},

		SubscribeTemplates: map[string][]string{
			// 物品名称, 归还时间, 订单号, 备注
			DemoTemplateReturnReminder: {"thing1", "time2", "character_string3", "thing4"},
			// 退还金额, 订单号, 退还时间, 说明
			DemoTemplateDepositRefund: {"amount1", "character_string2", "time3", "thing4"},
		},
		KFAccounts: []KFAccount{{OpenKfID: DemoOpenKfID, Name: "渔具租赁客服"}},
		Customers:  []Customer{{OpenID: DemoCustomerOpenID, UnionID: "", Nickname: "钓友小陈"}},
		Seed:       1,
	}
}

// withDefaults fills zero fields with documented defaults.
func (c Config) withDefaults() Config {
	if c.PushFormat == "" {
		c.PushFormat = FormatXML
	}
	if c.PushMode == "" {
		c.PushMode = PushSafe
	}
	d := DefaultRules()
	r := &c.Rules
	fillDur(&r.TokenTTL, d.TokenTTL)
	fillDur(&r.TokenOverlap, d.TokenOverlap)
	fillDur(&r.StableRotateBefore, d.StableRotateBefore)
	fillDur(&r.StableForceGap, d.StableForceGap)
	fillInt(&r.StableForcePerDay, d.StableForcePerDay)
	fillDur(&r.CodeTTL, d.CodeTTL)
	fillDur(&r.ReplyWindow, d.ReplyWindow)
	fillInt(&r.ReplyQuota, d.ReplyQuota)
	fillDur(&r.EnterWindow, d.EnterWindow)
	fillInt(&r.EnterQuota, d.EnterQuota)
	fillDur(&r.MediaTTL, d.MediaTTL)
	fillInt(&r.WeComPerUserMinute, d.WeComPerUserMinute)
	fillInt(&r.WeComPerUserHour, d.WeComPerUserHour)
	fillInt(&r.BadSecretCode, d.BadSecretCode)
	fillInt(&r.UsedCodeCode, d.UsedCodeCode)
	fillDur(&r.KFSyncTokenTTL, d.KFSyncTokenTTL)
	fillDur(&r.KFWelcomeCodeTTL, d.KFWelcomeCodeTTL)
	fillDur(&r.KFStateCodeTTL, d.KFStateCodeTTL)
	fillInt(&r.KFCountLimitCode, d.KFCountLimitCode)
	fillInt(&r.KFTimeLimitCode, d.KFTimeLimitCode)
	fillInt(&r.KFStateCode, d.KFStateCode)
	fillInt(&r.KFTransitionCode, d.KFTransitionCode)
	fillInt(&r.KFServicerCode, d.KFServicerCode)
	fillInt(&r.KFMsgTokenCode, d.KFMsgTokenCode)
	fillInt(&r.KFEventCodeCode, d.KFEventCodeCode)
	fillDur(&c.Push.Timeout, 5*time.Second)
	fillInt(&c.Push.Attempts, 3)
	if c.Quotas == nil {
		c.Quotas = DefaultQuotas()
	}
	return c
}

func fillDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

func fillInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

// validate rejects a configuration the real consoles would not accept, so a
// typo shows up at start rather than as a baffling signature mismatch later.
func (c Config) validate() error {
	if c.AppID == "" || c.AppSecret == "" {
		return fmt.Errorf("wxsim: AppID and AppSecret are required")
	}
	if n := len(c.Token); n < 3 || n > 32 {
		return fmt.Errorf("wxsim: Token must be 3–32 characters, got %d", n)
	}
	if err := checkAESKey("EncodingAESKey", c.EncodingAESKey); err != nil {
		return err
	}
	switch c.PushFormat {
	case FormatXML, FormatJSON:
	default:
		return fmt.Errorf("wxsim: PushFormat %q: want %q or %q", c.PushFormat, FormatXML, FormatJSON)
	}
	switch c.PushMode {
	case PushSafe, PushPlaintext, PushCompatible:
	default:
		return fmt.Errorf("wxsim: PushMode %q: want safe, plaintext or compatible", c.PushMode)
	}
	if c.CorpID == "" || c.CorpSecret == "" || c.AgentID == 0 {
		return fmt.Errorf("wxsim: CorpID, CorpSecret and AgentID are required")
	}
	if n := len(c.WeComToken); n < 3 || n > 32 {
		return fmt.Errorf("wxsim: WeComToken must be 3–32 characters, got %d", n)
	}
	if err := checkAESKey("WeComAESKey", c.WeComAESKey); err != nil {
		return err
	}
	for id, kws := range c.SubscribeTemplates {
		for _, kw := range kws {
			if _, ok := keywordRule(kw); !ok {
				return fmt.Errorf("wxsim: template %s: keyword %q has no known type", id, kw)
			}
		}
	}
	seen := map[string]bool{}
	for _, a := range c.KFAccounts {
		if a.OpenKfID == "" || seen[a.OpenKfID] {
			return fmt.Errorf("wxsim: KFAccounts: open_kfid %q is empty or listed twice", a.OpenKfID)
		}
		seen[a.OpenKfID] = true
	}
	if c.Push.Attempts < 1 {
		return fmt.Errorf("wxsim: Push.Attempts must be at least 1")
	}
	return nil
}

func checkAESKey(name, key string) error {
	if len(key) != 43 {
		return fmt.Errorf("wxsim: %s must be 43 characters, got %d", name, len(key))
	}
	raw, err := base64.StdEncoding.DecodeString(key + "=")
	if err != nil || len(raw) != 32 {
		return fmt.Errorf("wxsim: %s does not decode to 32 bytes", name)
	}
	return nil
}
