package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tacklegate/tacklegate/adapters/members"
	"github.com/tacklegate/tacklegate/adapters/sms"
	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/adapters/wechat"
	"github.com/tacklegate/tacklegate/rental"
)

// WeChatLogin is what customer login needs of the mini-program client.
type WeChatLogin interface {
	AppID() string
	Code2Session(ctx context.Context, jsCode string) (wechat.Session, error)
	PhoneNumber(ctx context.Context, code string) (wechat.PhoneInfo, error)
}

// WeComLogin is what staff login needs of the WeCom client.
type WeComLogin interface {
	UserIDFromOAuthCode(ctx context.Context, code string) (string, error)
}

// Identity configures the auth, member and owner routes.
type Identity struct {
	DB            *store.DB
	DataKey       []byte
	WeChat        WeChatLogin // nil: the mini-program channel is off
	WeCom         WeComLogin  // nil: WeCom is off
	SMS           sms.Sender
	SMSLimits     store.SMSLimits
	OwnerUsername string
}

// DefaultSMSLimits: one code a minute and ten a day per phone; a network
// (IP) may ask for 20 an hour, 100 a day (a shop's Wi-Fi serves many).
var DefaultSMSLimits = store.SMSLimits{PhonePerMinute: 1, PhonePerDay: 10, IPPerHour: 20, IPPerDay: 100}

const (
	smsCodeTTL      = 5 * time.Minute
	smsMaxAttempts  = 5
	importMaxBytes  = 20 << 20
	ownerMinPassLen = 10
)

func (s *Server) mountIdentity(id *Identity) {
	s.auth = newAuthority(id.DataKey, id.DB)
	h := &identityHandlers{id: id, auth: s.auth, ownerFails: newFailureLimiter(5, 15*time.Minute)}
	s.api("POST", "/auth/wechat", anyone, h.loginWeChat)
	s.api("POST", "/auth/sms/send", anyone, h.smsSend)
	s.api("POST", "/auth/sms/verify", anyone, h.smsVerify)
	s.api("POST", "/auth/phone", customers, h.phoneButton)
	s.api("POST", "/auth/refresh", anyone, h.refresh)
	s.api("POST", "/auth/logout", signedIn, h.logout)
	s.api("POST", "/auth/wecom", anyone, h.loginWeCom)
	s.api("POST", "/auth/owner", anyone, h.loginOwner)
	s.api("GET", "/me", customers, h.me)
	s.api("GET", "/staff/me", staffOnly, h.staffMe)

	s.api("POST", "/owner/password", ownerOnly, h.changeOwnerPassword)
	s.api("POST", "/owner/members/import", ownerOnly, h.importMembers)
	s.api("GET", "/owner/members", ownerOnly, h.listMembers)
	s.api("GET", "/owner/links", ownerOnly, h.listLinks)
	s.api("POST", "/owner/links/:id", ownerOnly, h.decideLink)
	s.api("POST", "/owner/identities/:id/unlink", ownerOnly, h.unlink)
	s.api("GET", "/owner/audit", ownerOnly, h.audit)
	s.api("GET", "/owner/staff", ownerOnly, h.listStaff)
	s.api("POST", "/owner/staff", ownerOnly, h.saveStaff)
}

type identityHandlers struct {
	id         *Identity
	auth       *authority
	ownerFails *failureLimiter
}

// body parses a JSON request body into v with a clear error.
func body(c *fiber.Ctx, v any) error {
	if err := c.BodyParser(v); err != nil {
		return rental.Wrap("gateway.body", rental.KindInvalid, "请求内容不是有效的 JSON (body is not valid JSON)", err)
	}
	return nil
}

type memberView struct {
	ID       rental.MemberID `json:"id"`
	MemberNo string          `json:"member_no,omitempty"`
	Name     string          `json:"name,omitempty"`
	Phone    string          `json:"phone,omitempty"` // masked
	Tier     rental.Tier     `json:"tier"`
	Points   int64           `json:"points"`
	JoinedAt time.Time       `json:"joined_at"`
}

func view(m rental.Member) memberView {
	v := memberView{ID: m.ID, MemberNo: m.MemberNo, Name: m.Name, Tier: m.Tier, Points: m.Points, JoinedAt: m.JoinedAt}
	if m.Phone != "" {
		v.Phone = rental.MaskPhone(m.Phone)
	}
	return v
}

// loginWeChat: the mini-program's wx.login code → the customer's account.
func (h *identityHandlers) loginWeChat(c *fiber.Ctx) error {
	const op = "auth.loginWeChat"
	if h.id.WeChat == nil {
		return rental.Errorf(op, rental.KindUnavailable, "微信登录未开通 (the mini-program channel is off)")
	}
	var in struct {
		Code string `json:"code"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	if in.Code == "" {
		return rental.Errorf(op, rental.KindInvalid, "缺少 code (code from wx.login is required)")
	}
	sess, err := h.id.WeChat.Code2Session(c.UserContext(), in.Code)
	if err != nil {
		return err
	}
	m, identity, created, err := h.id.DB.LoginWeChat(c.UserContext(), h.id.WeChat.AppID(), sess.OpenID, sess.UnionID)
	if err != nil {
		return err
	}
	t, err := h.auth.login(c.UserContext(), rental.RoleCustomer, "i:"+strconv.FormatInt(int64(identity.ID), 10))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": t, "member": view(m), "new": created})
}

func (h *identityHandlers) smsHash(phone, code string) string {
	m := hmac.New(sha256.New, h.auth.smsKey)
	m.Write([]byte(phone + ":" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// smsSend sends a six-digit code, within the limits.
func (h *identityHandlers) smsSend(c *fiber.Ctx) error {
	var in struct {
		Phone string `json:"phone"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	phone, err := rental.NormalizePhone(in.Phone)
	if err != nil {
		return err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return rental.Wrap("auth.smsSend", rental.KindInternal, "", err)
	}
	code := leftPad6(n.Int64())
	if err := h.id.DB.SaveSMSCode(c.UserContext(), phone, c.IP(), h.smsHash(phone, code), smsCodeTTL, h.id.SMSLimits); err != nil {
		return err
	}
	text := "【渔具租赁】您的验证码是 " + code + "，5 分钟内有效。如非本人操作请忽略。"
	if err := h.id.SMS.Send(c.UserContext(), phone, text); err != nil {
		return rental.Wrap("auth.smsSend", rental.KindUpstream, "短信发送失败，请稍后再试 (the SMS could not be sent)", err)
	}
	return c.JSON(fiber.Map{"sent": true, "expires_in": int(smsCodeTTL.Seconds())})
}

func leftPad6(n int64) string {
	s := strconv.FormatInt(n, 10)
	return strings.Repeat("0", 6-len(s)) + s
}

// smsVerify checks a code. A signed-in WeChat customer proves the phone for
// their account (linking); anyone else logs in by phone.
func (h *identityHandlers) smsVerify(c *fiber.Ctx) error {
	var in struct {
		Phone string `json:"phone"`
		Code  string `json:"code"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	phone, err := rental.NormalizePhone(in.Phone)
	if err != nil {
		return err
	}
	if len(in.Code) != 6 {
		return rental.Errorf("auth.smsVerify", rental.KindInvalid, "验证码是 6 位数字 (the code has 6 digits)")
	}
	want := h.smsHash(phone, in.Code)
	if err := h.id.DB.CheckSMSCode(c.UserContext(), phone, func(hash string) bool { return hmac.Equal([]byte(hash), []byte(want)) }, smsMaxAttempts); err != nil {
		return err
	}
	if hdr := c.Get(fiber.HeaderAuthorization); hdr != "" {
		p, err := h.auth.authenticate(c.UserContext(), hdr)
		if err != nil {
			return err
		}
		if identity, ok := p.IdentityID(); ok && p.Role == rental.RoleCustomer {
			return h.linkResult(c, identity, phone, "sms")
		}
	}
	m, created, err := h.id.DB.LoginPhone(c.UserContext(), phone)
	if err != nil {
		return err
	}
	t, err := h.auth.login(c.UserContext(), rental.RoleCustomer, "m:"+strconv.FormatInt(int64(m.ID), 10))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": t, "member": view(m), "new": created})
}

// phoneButton proves a phone through the mini-program's phone button code.
func (h *identityHandlers) phoneButton(c *fiber.Ctx) error {
	const op = "auth.phoneButton"
	if h.id.WeChat == nil {
		return rental.Errorf(op, rental.KindUnavailable, "微信未开通 (the mini-program channel is off)")
	}
	identity, ok := caller(c).IdentityID()
	if !ok {
		return rental.Errorf(op, rental.KindForbidden, "请先用微信登录 (log in with WeChat first)")
	}
	var in struct {
		Code string `json:"code"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	info, err := h.id.WeChat.PhoneNumber(c.UserContext(), in.Code)
	if err != nil {
		return err
	}
	raw := info.PhoneNumber
	if info.CountryCode != "" && info.CountryCode != "86" {
		raw = "+" + info.CountryCode + info.PurePhoneNumber
	} else if info.PurePhoneNumber != "" {
		raw = info.PurePhoneNumber
	}
	phone, err := rental.NormalizePhone(raw)
	if err != nil {
		return err
	}
	return h.linkResult(c, identity, phone, "phone_button")
}

func (h *identityHandlers) linkResult(c *fiber.Ctx, identity rental.IdentityID, phone, via string) error {
	out, err := h.id.DB.ProvePhone(c.UserContext(), identity, phone, via)
	if err != nil {
		return err
	}
	res := fiber.Map{"action": out.Action, "member": view(out.Member)}
	if out.Action == rental.LinkReview {
		res["review_id"] = out.ReviewID
		res["message"] = "该手机号已绑定其他微信，店主核实后会为您关联 (this phone belongs to an account already linked to another WeChat; the shop will review it)"
	}
	return c.JSON(res)
}

func (h *identityHandlers) refresh(c *fiber.Ctx) error {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	t, err := h.auth.refresh(c.UserContext(), in.RefreshToken)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": t})
}

func (h *identityHandlers) logout(c *fiber.Ctx) error {
	if err := h.id.DB.RevokeSession(c.UserContext(), caller(c).SessionID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// me is the signed-in customer's account, resolved now (so a relink shows
// at once).
func (h *identityHandlers) me(c *fiber.Ctx) error {
	m, err := h.customerMember(c.UserContext(), caller(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"member": view(m)})
}

func (h *identityHandlers) customerMember(ctx context.Context, p Principal) (rental.Member, error) {
	if identity, ok := p.IdentityID(); ok {
		return h.id.DB.IdentityMember(ctx, identity)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(p.Subject, "m:"), 10, 64)
	if err != nil {
		return rental.Member{}, rental.Errorf("auth.customerMember", rental.KindUnauthorized, "登录信息无效 (bad session subject)")
	}
	return h.id.DB.Member(ctx, rental.MemberID(id))
}

// CustomerMember returns the member the signed-in customer acts as, resolved
// now (so a relink or unlink applies to the next request). Use it in any
// handler registered for customers.
func (s *Server) CustomerMember(c *fiber.Ctx) (rental.Member, error) {
	if s.opts.Identity == nil {
		return rental.Member{}, rental.Errorf("gateway.CustomerMember", rental.KindInternal, "identity routes are not configured")
	}
	h := &identityHandlers{id: s.opts.Identity}
	return h.customerMember(c.UserContext(), caller(c))
}

// loginWeCom: the code WeCom's browser carries → a registered staff member.
func (h *identityHandlers) loginWeCom(c *fiber.Ctx) error {
	const op = "auth.loginWeCom"
	if h.id.WeCom == nil {
		return rental.Errorf(op, rental.KindUnavailable, "企业微信未开通 (WeCom is off)")
	}
	var in struct {
		Code string `json:"code"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	userID, err := h.id.WeCom.UserIDFromOAuthCode(c.UserContext(), in.Code)
	if err != nil {
		return err
	}
	st, err := h.id.DB.StaffByUserID(c.UserContext(), userID)
	if rental.ErrorKind(err) == rental.KindNotFound || (err == nil && !st.Active) {
		return rental.Errorf(op, rental.KindForbidden, "您还不是本店店员，请联系店主添加 (%s is not registered as staff)", userID)
	}
	if err != nil {
		return err
	}
	t, err := h.auth.login(c.UserContext(), rental.RoleStaff, st.WeComUserID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": t, "staff": st})
}

func (h *identityHandlers) staffMe(c *fiber.Ctx) error {
	p := caller(c)
	if p.Role == rental.RoleOwner {
		return c.JSON(fiber.Map{"owner": p.Subject})
	}
	st, err := h.id.DB.StaffByUserID(c.UserContext(), p.Subject)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"staff": st})
}

// loginOwner checks the owner's password; repeated failures from one
// address are refused for a while.
func (h *identityHandlers) loginOwner(c *fiber.Ctx) error {
	const op = "auth.loginOwner"
	ip := string([]byte(c.IP()))
	if !h.ownerFails.allowed(ip) {
		return rental.Errorf(op, rental.KindRateLimited, "密码错误次数太多，请 15 分钟后再试 (too many failed logins; wait 15 minutes)")
	}
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	if in.Username == "" {
		in.Username = h.id.OwnerUsername
	}
	hash, ok, err := h.id.DB.OwnerPasswordHash(c.UserContext(), in.Username)
	if err != nil {
		return err
	}
	if !ok || bcrypt.CompareHashAndPassword([]byte(hash), []byte(in.Password)) != nil {
		h.ownerFails.fail(ip)
		return rental.Errorf(op, rental.KindUnauthorized, "用户名或密码不正确 (wrong username or password)")
	}
	h.ownerFails.reset(ip)
	t, err := h.auth.login(c.UserContext(), rental.RoleOwner, in.Username)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": t})
}

func (h *identityHandlers) changeOwnerPassword(c *fiber.Ctx) error {
	const op = "auth.changeOwnerPassword"
	var in struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	user := caller(c).Subject
	hash, ok, err := h.id.DB.OwnerPasswordHash(c.UserContext(), user)
	if err != nil {
		return err
	}
	if !ok || bcrypt.CompareHashAndPassword([]byte(hash), []byte(in.Current)) != nil {
		return rental.Errorf(op, rental.KindUnauthorized, "当前密码不正确 (current password is wrong)")
	}
	if len([]rune(in.New)) < ownerMinPassLen {
		return rental.Errorf(op, rental.KindInvalid, "新密码至少 %d 位 (at least %d characters)", ownerMinPassLen, ownerMinPassLen)
	}
	newHash, err := bcrypt.GenerateFromPassword([]byte(in.New), bcrypt.DefaultCost)
	if err != nil {
		return rental.Wrap(op, rental.KindInvalid, "新密码无法使用 (password not usable)", err)
	}
	if err := h.id.DB.SetOwnerPasswordHash(c.UserContext(), user, string(newHash)); err != nil {
		return err
	}
	// Other sessions of the owner end: a changed password is often a leaked one.
	if err := h.id.DB.RevokeSessions(c.UserContext(), rental.RoleOwner, user); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// SeedOwner stores the bootstrap password's hash if the owner has none yet.
func SeedOwner(ctx context.Context, db *store.DB, username, password string) (seeded bool, err error) {
	if password == "" {
		return false, nil
	}
	if _, ok, err := db.OwnerPasswordHash(ctx, username); err != nil || ok {
		return false, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return false, rental.Wrap("gateway.SeedOwner", rental.KindInvalid, "TACKLEGATE_OWNER_PASSWORD is not usable", err)
	}
	return true, db.SetOwnerPasswordHash(ctx, username, string(hash))
}

func (h *identityHandlers) importMembers(c *fiber.Ctx) error {
	const op = "owner.importMembers"
	fh, err := c.FormFile("file")
	if err != nil {
		return rental.Wrap(op, rental.KindInvalid, "请上传 CSV 文件（表单字段 file） (upload the CSV as form field \"file\")", err)
	}
	f, err := fh.Open()
	if err != nil {
		return rental.Wrap(op, rental.KindInvalid, "无法读取上传的文件 (cannot read the upload)", err)
	}
	defer f.Close()
	parsed, err := members.ParseCSV(f, importMaxBytes)
	if err != nil {
		return err
	}
	if len(parsed.Errors) > 0 {
		return &store.ImportErrors{Rows: parsed.Errors}
	}
	rep, err := h.id.DB.ImportMembers(c.UserContext(), parsed.Rows, nil)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"report": rep, "rows": len(parsed.Rows), "encoding": parsed.Encoding})
}

func (h *identityHandlers) listMembers(c *fiber.Ctx) error {
	page, err := h.id.DB.ListMembers(c.UserContext(), c.Query("q"), c.Query("cursor"), c.QueryInt("limit", 50))
	if err != nil {
		return err
	}
	out := make([]memberView, len(page.Members))
	for i, m := range page.Members {
		out[i] = view(m)
	}
	return c.JSON(fiber.Map{"members": out, "next_cursor": page.NextCursor})
}

func (h *identityHandlers) listLinks(c *fiber.Ctx) error {
	rows, err := h.id.DB.ListLinkReviews(c.UserContext(), c.Query("status"), int64(c.QueryInt("after", 0)), c.QueryInt("limit", 50))
	if err != nil {
		return err
	}
	next := ""
	if len(rows) > 0 {
		next = strconv.FormatInt(rows[len(rows)-1].ID, 10)
	}
	return c.JSON(fiber.Map{"reviews": rows, "next_cursor": next})
}

func paramID(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, rental.Errorf("gateway.paramID", rental.KindInvalid, "编号无效 (bad id %q)", c.Params("id"))
	}
	return id, nil
}

func (h *identityHandlers) decideLink(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	var in struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	rv, err := h.id.DB.DecideLinkReview(c.UserContext(), id, in.Decision, caller(c).Subject, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"review": rv})
}

func (h *identityHandlers) unlink(c *fiber.Ctx) error {
	id, err := paramID(c)
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	g, err := h.id.DB.Unlink(c.UserContext(), rental.IdentityID(id), caller(c).Subject, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"member": view(g)})
}

func (h *identityHandlers) audit(c *fiber.Ctx) error {
	rows, err := h.id.DB.LinkAudit(c.UserContext(), rental.MemberID(c.QueryInt("member", 0)), int64(c.QueryInt("after", 0)), c.QueryInt("limit", 100))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"entries": rows})
}

func (h *identityHandlers) listStaff(c *fiber.Ctx) error {
	st, err := h.id.DB.ListStaff(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"staff": st})
}

func (h *identityHandlers) saveStaff(c *fiber.Ctx) error {
	var in struct {
		WeComUserID string `json:"wecom_userid"`
		Name        string `json:"name"`
		Active      *bool  `json:"active"`
	}
	if err := body(c, &in); err != nil {
		return err
	}
	if in.WeComUserID == "" || in.Name == "" {
		return rental.Errorf("owner.saveStaff", rental.KindInvalid, "请填写企业微信账号和姓名 (wecom_userid and name are required)")
	}
	active := in.Active == nil || *in.Active
	st, err := h.id.DB.SaveStaff(c.UserContext(), in.WeComUserID, in.Name, active)
	if err != nil {
		return err
	}
	if !active {
		if err := h.id.DB.RevokeSessions(c.UserContext(), rental.RoleStaff, in.WeComUserID); err != nil {
			return err
		}
	}
	return c.JSON(fiber.Map{"staff": st})
}

// failureLimiter counts failures per key in a window (owner login).
type failureLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	fails  map[string][]time.Time
}

func newFailureLimiter(max int, window time.Duration) *failureLimiter {
	return &failureLimiter{max: max, window: window, fails: map[string][]time.Time{}}
}

func (l *failureLimiter) allowed(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := time.Now().Add(-l.window)
	recent := l.fails[key][:0]
	for _, t := range l.fails[key] {
		if t.After(cut) {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = recent
	}
	return len(recent) < l.max
}

func (l *failureLimiter) fail(key string) {
	l.mu.Lock()
	l.fails[key] = append(l.fails[key], time.Now())
	l.mu.Unlock()
}

func (l *failureLimiter) reset(key string) {
	l.mu.Lock()
	delete(l.fails, key)
	l.mu.Unlock()
}
