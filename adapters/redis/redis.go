// Package redis connects tacklegate instances to a shared Redis: the access
// token cache, presence and pub/sub between instances build on it. Redis is
// optional; one instance on SQLite needs none.
package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tacklegate/tacklegate/rental"
)

// Client is a connection pool to one Redis server.
type Client struct {
	rdb *goredis.Client
}

// Open connects to a redis:// or rediss:// URL and checks that it answers.
func Open(ctx context.Context, url string) (*Client, error) {
	const op = "redis.Open"
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, rental.Wrap(op, rental.KindInvalid, "TACKLEGATE_REDIS_URL is not a valid Redis URL", err)
	}
	opt.DialTimeout = 3 * time.Second
	c := &Client{rdb: goredis.NewClient(opt)}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pingCtx); err != nil {
		c.Close()
		return nil, rental.Wrap(op, rental.KindUnavailable, "Redis does not answer at TACKLEGATE_REDIS_URL", err)
	}
	return c, nil
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }

// Raw exposes the go-redis client to the other adapters built on it.
func (c *Client) Raw() *goredis.Client { return c.rdb }
