package rental

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestErrorKindAndMessage(t *testing.T) {
	inner := &Error{Op: "store.Get", Kind: KindNotFound, Message: "订单不存在"}
	tests := []struct {
		name     string
		err      error
		wantKind Kind
		wantMsg  string
	}{
		{"nil", nil, "", ""},
		{"plain error is internal with no safe message", io.EOF, KindInternal, ""},
		{"direct", inner, KindNotFound, "订单不存在"},
		{"wrapped with fmt", fmt.Errorf("loading: %w", inner), KindNotFound, "订单不存在"},
		{"outer without message falls through to inner", &Error{Op: "api", Kind: KindConflict, Err: inner}, KindConflict, "订单不存在"},
		{"Wrap keeps cause", Wrap("op", KindUpstream, "微信暂时不可用", io.ErrUnexpectedEOF), KindUpstream, "微信暂时不可用"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorKind(tt.err); got != tt.wantKind {
				t.Errorf("ErrorKind = %q, want %q", got, tt.wantKind)
			}
			if got := ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestWrapNilIsNil(t *testing.T) {
	if err := Wrap("op", KindInternal, "x", nil); err != nil {
		t.Fatalf("Wrap(nil) = %v, want nil", err)
	}
}

func TestErrorStringAndUnwrap(t *testing.T) {
	err := Wrap("store.CreateOrder", KindInternal, "保存失败", io.ErrClosedPipe)
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("errors.Is did not find the cause through Unwrap")
	}
	want := "store.CreateOrder: internal: 保存失败: io: read/write on closed pipe"
	if err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}
