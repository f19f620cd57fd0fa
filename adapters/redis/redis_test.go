package redis

import (
	"context"
	"os"
	"testing"

	"github.com/tacklegate/tacklegate/adapters/store/storetest"
	"github.com/tacklegate/tacklegate/rental"
)

func TestOpenAndPing(t *testing.T) {
	url := os.Getenv("TACKLEGATE_TEST_REDIS_URL")
	if url == "" {
		storetest.SkipOrFailInCI(t, "TACKLEGATE_TEST_REDIS_URL not set: Redis tests skipped")
	}
	c, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "http://x"); rental.ErrorKind(err) != rental.KindInvalid {
		t.Errorf("bad URL: %v", err)
	}
	if _, err := Open(ctx, "redis://127.0.0.1:1/0"); rental.ErrorKind(err) != rental.KindUnavailable {
		t.Errorf("unreachable: %v", err)
	}
}
