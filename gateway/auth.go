package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tacklegate/tacklegate/adapters/store"
	"github.com/tacklegate/tacklegate/rental"
)

// Tokens are what a login returns.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"` // seconds the access token lives
	Role         string `json:"role"`
}

// Principal is the authenticated caller.
type Principal struct {
	Role      rental.Role
	Subject   string // "i:<identity>" or "m:<member>" for customers, the WeCom userid for staff, the username for the owner
	SessionID int64
}

// IdentityID returns the customer's WeChat identity, if they logged in with WeChat.
func (p Principal) IdentityID() (rental.IdentityID, bool) {
	if v, ok := strings.CutPrefix(p.Subject, "i:"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		return rental.IdentityID(n), err == nil
	}
	return 0, false
}

type claims struct {
	Role string `json:"role"`
	SID  int64  `json:"sid"`
	jwt.RegisteredClaims
}

// authority issues and checks tokens. The signing key is derived from the
// data key, so every instance accepts every other's tokens and no second
// secret has to be distributed.
type authority struct {
	dataKey    []byte
	key        []byte
	smsKey     []byte
	db         *store.DB
	accessTTL  time.Duration
	refreshTTL time.Duration
}

func newAuthority(dataKey []byte, db *store.DB) *authority {
	a := &authority{dataKey: dataKey, db: db, accessTTL: 15 * time.Minute, refreshTTL: 30 * 24 * time.Hour}
	a.key, a.smsKey = a.derive("tacklegate access tokens v1"), a.derive("tacklegate sms codes v1")
	return a
}

// derive makes a key for one purpose from the data key, so that a secret
// for one use can never serve another.
func (a *authority) derive(label string) []byte {
	m := hmac.New(sha256.New, a.dataKey)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// login starts a session and returns its tokens.
func (a *authority) login(ctx context.Context, role rental.Role, subject string) (Tokens, error) {
	refresh := randomToken()
	s, err := a.db.CreateSession(ctx, role, subject, hashToken(refresh), time.Now().Add(a.refreshTTL))
	if err != nil {
		return Tokens{}, err
	}
	return a.tokens(s, refresh)
}

func (a *authority) tokens(s store.Session, refresh string) (Tokens, error) {
	now := time.Now()
	c := claims{Role: string(s.Role), SID: s.ID, RegisteredClaims: jwt.RegisteredClaims{
		Subject: s.Subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(a.accessTTL)), Issuer: "tacklegate",
	}}
	access, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.key)
	if err != nil {
		return Tokens{}, rental.Wrap("auth.tokens", rental.KindInternal, "", err)
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(a.accessTTL.Seconds()), Role: string(s.Role)}, nil
}

// refresh rotates a refresh token into new tokens.
func (a *authority) refresh(ctx context.Context, token string) (Tokens, error) {
	if token == "" {
		return Tokens{}, rental.Errorf("auth.refresh", rental.KindInvalid, "缺少 refresh_token (refresh_token is required)")
	}
	next := randomToken()
	s, err := a.db.RotateSession(ctx, hashToken(token), hashToken(next), time.Now().Add(a.refreshTTL))
	if err != nil {
		return Tokens{}, err
	}
	return a.tokens(s, next)
}

// authenticate checks a bearer token and that its session is still live.
func (a *authority) authenticate(ctx context.Context, header string) (Principal, error) {
	const op = "auth.authenticate"
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		return Principal{}, rental.Errorf(op, rental.KindUnauthorized, "请先登录 (send Authorization: Bearer <access token>)")
	}
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired(), jwt.WithIssuer("tacklegate"))
	if err != nil {
		return Principal{}, rental.Wrap(op, rental.KindUnauthorized, "登录已过期，请刷新或重新登录 (access token invalid or expired)", err)
	}
	live, err := a.db.SessionLive(ctx, c.SID)
	if err != nil {
		return Principal{}, err
	}
	if !live {
		return Principal{}, rental.Errorf(op, rental.KindUnauthorized, "已退出登录 (session ended)")
	}
	return Principal{Role: rental.Role(c.Role), Subject: c.Subject, SessionID: c.SID}, nil
}

const localsPrincipal = "principal"

// caller returns the authenticated principal of a request that passed a
// role check.
func caller(c *fiber.Ctx) Principal {
	p, _ := c.Locals(localsPrincipal).(Principal)
	return p
}

// routeRoles records, for every /api/v1 route, which roles it admits
// (nil: public). The role-walk test reads it.
type routeRoles map[string][]rental.Role

// api registers an /api/v1 route with the roles allowed to call it; with no
// roles the route is public. Every /api/v1 route goes through here.
func (s *Server) api(method, path string, roles []rental.Role, h fiber.Handler) {
	full := "/api/v1" + path
	s.roles[method+" "+full] = roles
	if len(roles) == 0 {
		s.app.Add(method, full, h)
		return
	}
	s.app.Add(method, full, s.requireRole(roles), h)
}

func (s *Server) requireRole(roles []rental.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := s.auth.authenticate(c.UserContext(), c.Get(fiber.HeaderAuthorization))
		if err != nil {
			return err
		}
		for _, r := range roles {
			if p.Role == r {
				c.Locals(localsPrincipal, p)
				return c.Next()
			}
		}
		return rental.Errorf("auth.requireRole", rental.KindForbidden, "没有权限：此功能仅限%s (allowed for %s)", roleNames(roles), roleList(roles))
	}
}

func roleList(roles []rental.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func roleNames(roles []rental.Role) string {
	names := map[rental.Role]string{rental.RoleCustomer: "顾客", rental.RoleStaff: "店员", rental.RoleOwner: "店主"}
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = names[r]
	}
	return strings.Join(s, "、")
}

var (
	anyone    []rental.Role // public
	customers = []rental.Role{rental.RoleCustomer}
	staffOnly = []rental.Role{rental.RoleStaff, rental.RoleOwner}
	ownerOnly = []rental.Role{rental.RoleOwner}
	signedIn  = []rental.Role{rental.RoleCustomer, rental.RoleStaff, rental.RoleOwner}
)
