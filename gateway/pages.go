package gateway

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// The H5 pages are plain HTML, CSS and JavaScript embedded in the binary: no
// build step, nothing fetched from a CDN (the mini-program's web-view and
// WeCom's browser may not reach one). web/assets holds what every page
// shares (tg.js: API calls, tokens, errors, the /ws live channel; tg.css);
// each page has its own folder with an index.html.
//
//go:embed web
var webFiles embed.FS

// pages maps a page route to its folder under web/.
var pages = map[string]string{
	"/":         "customer",
	"/staff":    "staff",
	"/owner":    "owner",
	"/room/:id": "room",
}

// pageHeaders keep the pages to their own origin: scripts only from files we
// serve (no inline script), media and sockets to ourselves.
func pageHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
		"img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Cache-Control", "no-cache")
}

func (s *Server) mountPages() {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic("gateway: embedded pages missing: " + err.Error()) // the embed directive makes this unreachable
	}
	s.app.Use("/assets", func(c *fiber.Ctx) error { pageHeaders(c); return c.Next() }, filesystem.New(filesystem.Config{
		Root: http.FS(sub), PathPrefix: "assets", MaxAge: 0,
	}))
	for route, dir := range pages {
		index := path.Join(dir, "index.html")
		if _, err := fs.Stat(sub, index); err != nil {
			continue // the page has not landed yet
		}
		body, _ := fs.ReadFile(sub, index)
		s.app.Get(route, func(c *fiber.Ctx) error {
			if strings.Contains(c.Params("id"), ".") {
				return c.Next() // /room/app.js is the page's own file, not a room (room ids have no dot)
			}
			pageHeaders(c)
			c.Type("html", "utf-8")
			return c.Send(body)
		})
		// The page's own scripts and styles: /staff/app.js → web/staff/app.js.
		prefix := "/" + dir
		s.app.Use(prefix+"/", func(c *fiber.Ctx) error {
			if strings.HasSuffix(c.Path(), "/") {
				return c.Next()
			}
			pageHeaders(c)
			return c.Next()
		}, filesystem.New(filesystem.Config{Root: http.FS(sub), PathPrefix: dir}))
	}
}
