package wxsim

import (
	_ "embed"
	"net/http"
)

//go:embed page.html
var pageHTML []byte

func (s *Simulator) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(pageHTML)
}
