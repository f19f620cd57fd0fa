package redis

import (
	"context"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPresenceKey is the hash that holds when each staff member was last
// seen, shared by every instance.
const DefaultPresenceKey = "tacklegate:presence"

// PresenceStore keeps staff members' last heartbeat (the console) and last
// activity (the WeCom app) in one Redis hash, fields "<kind>:<userid>" →
// Unix milliseconds, so that every instance sees the same presence.
type PresenceStore struct {
	rdb *goredis.Client
	key string
}

// NewPresenceStore returns the store on key (DefaultPresenceKey when empty).
func NewPresenceStore(c *Client, key string) *PresenceStore {
	if key == "" {
		key = DefaultPresenceKey
	}
	return &PresenceStore{rdb: c.Raw(), key: key}
}

// Touch records that userID was seen at `at` (kind: "hb" or "act"). A
// later instant never goes back: two instances may touch out of order.
func (p *PresenceStore) Touch(ctx context.Context, userID, kind string, at time.Time) error {
	return touchScript.Run(ctx, p.rdb, []string{p.key}, kind+":"+userID, at.UnixMilli()).Err()
}

var touchScript = goredis.NewScript(`
local cur = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0")
if tonumber(ARGV[2]) > cur then
	redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
end
redis.call("EXPIRE", KEYS[1], 172800)
return 1`)

var pruneScript = goredis.NewScript(`
local all = redis.call("HGETALL", KEYS[1])
local n = 0
for i = 1, #all, 2 do
	if tonumber(all[i+1]) < tonumber(ARGV[1]) then
		redis.call("HDEL", KEYS[1], all[i])
		n = n + 1
	end
end
return n`)

// Prune forgets sightings older than before.
func (p *PresenceStore) Prune(ctx context.Context, before time.Time) error {
	return pruneScript.Run(ctx, p.rdb, []string{p.key}, before.UnixMilli()).Err()
}

// Snapshot returns every userID's last sighting per kind.
func (p *PresenceStore) Snapshot(ctx context.Context) (map[string]map[string]time.Time, error) {
	all, err := p.rdb.HGetAll(ctx, p.key).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]time.Time{}
	for field, v := range all {
		kind, user, ok := strings.Cut(field, ":")
		ms, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		if out[user] == nil {
			out[user] = map[string]time.Time{}
		}
		out[user][kind] = time.UnixMilli(ms).UTC()
	}
	return out, nil
}

// DefaultLiveChannel is the pub/sub channel of live updates.
const DefaultLiveChannel = "tacklegate:live"

// Bus carries live-update events between instances over Redis pub/sub:
// each instance publishes what changed and delivers what it receives
// (its own messages included) to its own WebSocket clients.
type Bus struct {
	rdb     *goredis.Client
	channel string
}

// NewBus returns a bus on channel (DefaultLiveChannel when empty).
func NewBus(c *Client, channel string) *Bus {
	if channel == "" {
		channel = DefaultLiveChannel
	}
	return &Bus{rdb: c.Raw(), channel: channel}
}

// Publish sends payload to every instance.
func (b *Bus) Publish(ctx context.Context, payload []byte) error {
	return b.rdb.Publish(ctx, b.channel, payload).Err()
}

// Subscribe calls fn with every payload published until ctx ends. ready
// is closed once the subscription is in place. go-redis reconnects a
// dropped subscription by itself; messages published meanwhile are lost,
// which is why receivers treat events as hints to read the database.
func (b *Bus) Subscribe(ctx context.Context, ready chan<- struct{}, fn func([]byte)) error {
	sub := b.rdb.Subscribe(ctx, b.channel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return err
	}
	if ready != nil {
		close(ready)
	}
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			fn([]byte(m.Payload))
		}
	}
}
