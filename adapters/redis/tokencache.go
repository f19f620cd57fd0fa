package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/cache"

	"github.com/tacklegate/tacklegate/adapters/wechat/token"
)

// DefaultTokenPrefix namespaces the token keys of tacklegate in a Redis
// that may serve other applications.
const DefaultTokenPrefix = "tacklegate:token:"

// TokenCache keeps access tokens in Redis so that every instance uses the
// same one. It is the token.Store of the WeChat and WeCom clients, and also
// silenceper's cache.ContextCache (on go-redis v9, instead of the go-redis
// v8 client silenceper's own cache.Redis would add) for SDK parts that
// manage their own tokens, such as the 微信客服 client.
type TokenCache struct {
	rdb    *goredis.Client
	prefix string
}

var (
	_ token.Store        = (*TokenCache)(nil)
	_ cache.ContextCache = (*TokenCache)(nil)
)

// NewTokenCache returns a cache whose keys all start with prefix
// (DefaultTokenPrefix when empty).
func NewTokenCache(c *Client, prefix string) *TokenCache {
	if prefix == "" {
		prefix = DefaultTokenPrefix
	}
	return &TokenCache{rdb: c.Raw(), prefix: prefix}
}

// Both scripts act only while the key still holds the caller's value, in one
// step: a GET followed by a DEL could delete a token (or lock) another
// instance stored in between.
var deleteIfScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Load implements token.Store: the token and its remaining time to live.
func (c *TokenCache) Load(ctx context.Context, key string) (string, time.Duration, error) {
	var get *goredis.StringCmd
	var ttl *goredis.DurationCmd
	_, err := c.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, c.prefix+key)
		ttl = p.PTTL(ctx, c.prefix+key)
		return nil
	})
	if errors.Is(err, goredis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("redis: load token %s: %w", key, err)
	}
	d := ttl.Val()
	if d < 0 { // -1: no expiry (not written by us), -2: gone meanwhile
		return "", 0, nil
	}
	return get.Val(), d, nil
}

// Save implements token.Store.
func (c *TokenCache) Save(ctx context.Context, key, value string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: save token %s: ttl %v is not positive", key, ttl)
	}
	if err := c.rdb.Set(ctx, c.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("redis: save token %s: %w", key, err)
	}
	return nil
}

// DeleteIf implements token.Store: compare-and-delete.
func (c *TokenCache) DeleteIf(ctx context.Context, key, value string) (bool, error) {
	n, err := deleteIfScript.Run(ctx, c.rdb, []string{c.prefix + key}, value).Int()
	if err != nil {
		return false, fmt.Errorf("redis: drop token %s: %w", key, err)
	}
	return n == 1, nil
}

// TryLock implements token.Store with SET NX PX and a random owner, released
// by compare-and-delete so that a holder whose lock expired cannot release
// the next holder's.
func (c *TokenCache) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context), bool, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, err
	}
	owner := hex.EncodeToString(b[:])
	ok, err := c.rdb.SetNX(ctx, c.prefix+key, owner, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("redis: lock %s: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func(ctx context.Context) {
		// Detached: a caller that gave up must still free the lock.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = deleteIfScript.Run(ctx, c.rdb, []string{c.prefix + key}, owner).Err()
	}, true, nil
}

// silenceper's cache.Cache. Its methods have no error results (Get, IsExist)
// or no context (Get, Set, IsExist, Delete), so failures read as "absent"
// and the context-less forms use a bounded background context.

const sdkTimeout = 3 * time.Second

// GetContext returns the string stored under key, or nil.
func (c *TokenCache) GetContext(ctx context.Context, key string) any {
	v, err := c.rdb.Get(ctx, c.prefix+key).Result()
	if err != nil {
		return nil
	}
	return v
}

// SetContext stores val (strings as they are, anything else as JSON). A
// timeout ≤ 0 means the value is already stale — silenceper computes
// expires_in minus a margin — so the key is deleted instead of failing the
// caller, as a SETEX with a non-positive time would.
func (c *TokenCache) SetContext(ctx context.Context, key string, val any, timeout time.Duration) error {
	if timeout <= 0 {
		return c.rdb.Del(ctx, c.prefix+key).Err()
	}
	var s string
	switch v := val.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("redis: cache %s: %w", key, err)
		}
		s = string(b)
	}
	return c.rdb.Set(ctx, c.prefix+key, s, timeout).Err()
}

// IsExistContext reports whether key exists.
func (c *TokenCache) IsExistContext(ctx context.Context, key string) bool {
	n, err := c.rdb.Exists(ctx, c.prefix+key).Result()
	return err == nil && n > 0
}

// DeleteContext deletes key.
func (c *TokenCache) DeleteContext(ctx context.Context, key string) error {
	return c.rdb.Del(ctx, c.prefix+key).Err()
}

// Get implements cache.Cache.
func (c *TokenCache) Get(key string) any {
	ctx, cancel := context.WithTimeout(context.Background(), sdkTimeout)
	defer cancel()
	return c.GetContext(ctx, key)
}

// Set implements cache.Cache.
func (c *TokenCache) Set(key string, val any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), sdkTimeout)
	defer cancel()
	return c.SetContext(ctx, key, val, timeout)
}

// IsExist implements cache.Cache.
func (c *TokenCache) IsExist(key string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), sdkTimeout)
	defer cancel()
	return c.IsExistContext(ctx, key)
}

// Delete implements cache.Cache.
func (c *TokenCache) Delete(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), sdkTimeout)
	defer cancel()
	return c.DeleteContext(ctx, key)
}
