package gateway

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tacklegate/tacklegate/rental"
)

// Evidence: inspection photos uploaded at the counter (sealed at rest and
// chained into the order's evidence), the chain verified on every read, and
// an export that a third party can check without tacklegate.

// photoTypes are the images accepted as inspection photos, by sniffed type.
var photoTypes = map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}

// uploadPhotos takes multipart field "file" (repeatable) and chains each
// photo into the order's evidence; their ids go into the inspection.
func (h *rentalHandlers) uploadPhotos(c *fiber.Ctx) error {
	const op = "staff.uploadPhotos"
	ctx := c.UserContext()
	id, err := orderParam(c)
	if err != nil {
		return err
	}
	o, err := h.r.DB.Order(ctx, id)
	if err != nil {
		return err
	}
	switch o.State {
	case rental.StatePaid, rental.StatePickedUp, rental.StateReturned, rental.StateSettled:
	default:
		return rental.Errorf(op, rental.KindConflict, "订单状态为 %s，不能上传验货照片 (order is %s; photos are for paid orders)", o.State, o.State)
	}
	form, err := c.MultipartForm()
	if err != nil {
		return rental.Wrap(op, rental.KindInvalid, "请以 multipart 表单上传照片（字段 file） (upload photos as multipart field \"file\")", err)
	}
	files := form.File["file"]
	if len(files) == 0 {
		return rental.Errorf(op, rental.KindInvalid, "请上传照片（字段 file） (no photo in field \"file\")")
	}
	caption := strings.TrimSpace(c.FormValue("caption"))
	type saved struct {
		ID        rental.EvidenceID `json:"id"`
		Seq       int               `json:"seq"`
		Name      string            `json:"name"`
		MediaType string            `json:"media_type"`
		Size      int64             `json:"size"`
		SHA256    string            `json:"sha256"`
	}
	var out []saved
	by := actor(caller(c))
	for _, fh := range files {
		if fh.Size > rental.MaxEvidenceSize {
			return rental.Errorf(op, rental.KindInvalid, "照片太大，最大 %d MB (photo too large)", rental.MaxEvidenceSize>>20)
		}
		f, err := fh.Open()
		if err != nil {
			return rental.Wrap(op, rental.KindInvalid, "无法读取上传的照片 (cannot read the upload)", err)
		}
		content, err := io.ReadAll(io.LimitReader(f, rental.MaxEvidenceSize+1))
		f.Close()
		if err != nil {
			return rental.Wrap(op, rental.KindInvalid, "无法读取上传的照片 (cannot read the upload)", err)
		}
		mt := http.DetectContentType(content)
		if _, ok := photoTypes[mt]; !ok {
			return rental.Errorf(op, rental.KindInvalid, "%s 不是 JPEG/PNG/GIF/WebP 图片 (%s is not a photo: %s)", fh.Filename, fh.Filename, mt)
		}
		name := path.Base(strings.ReplaceAll(fh.Filename, "\\", "/"))
		if name == "." || name == "/" {
			name = "photo"
		}
		if len([]rune(name)) > 100 {
			name = string([]rune(name)[:100])
		}
		if caption != "" {
			name = caption + " · " + name
		}
		e := rental.Evidence{OrderID: o.ID, Kind: rental.EvidencePhoto, MediaType: mt, Name: name, Ref: "upload",
			Actor: by, CreatedAt: h.r.now(), Content: content}
		if err := h.r.DB.AppendEvidence(ctx, &e); err != nil {
			return err
		}
		out = append(out, saved{ID: e.ID, Seq: e.Seq, Name: e.Name, MediaType: e.MediaType, Size: e.Size, SHA256: e.ContentHash})
	}
	Logger(c).Info("inspection photos stored", "order", o.ID, "count", len(out))
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"photos": out})
}

type evidenceItemView struct {
	ID         rental.EvidenceID   `json:"id"`
	Seq        int                 `json:"seq"`
	Kind       rental.EvidenceKind `json:"kind"`
	MediaType  string              `json:"media_type"`
	Name       string              `json:"name,omitempty"`
	Ref        string              `json:"ref,omitempty"`
	Actor      rental.Actor        `json:"actor"`
	CreatedAt  time.Time           `json:"created_at"`
	Size       int64               `json:"size"`
	External   bool                `json:"external,omitempty"`
	Unreadable bool                `json:"unreadable,omitempty"`
	SHA256     string              `json:"sha256"`
	PrevLink   string              `json:"prev_link"`
	Link       string              `json:"link"`
	File       string              `json:"file,omitempty"` // in the zip export
	URL        string              `json:"url,omitempty"`  // in the JSON answer
}

type chainBreakView struct {
	Index   int                `json:"index"`
	Seq     int                `json:"seq,omitempty"`
	ID      rental.EvidenceID  `json:"id,omitempty"`
	Reason  rental.BreakReason `json:"reason"`
	Message string             `json:"message"`
}

type inspectionCheck struct {
	ID                rental.InspectionID   `json:"id"`
	Kind              rental.InspectionKind `json:"kind"`
	EvidenceID        rental.EvidenceID     `json:"evidence_id"`
	MatchesRecord     bool                  `json:"matches_record"` // the table rows still say what the chained record says
	Confirmed         bool                  `json:"confirmed"`
	ConfirmEvidenceID rental.EvidenceID     `json:"confirm_evidence_id,omitempty"`
}

type verification struct {
	OK          bool              `json:"ok"`
	Message     string            `json:"message"`
	Break       *chainBreakView   `json:"break,omitempty"`
	Inspections []inspectionCheck `json:"inspections"`
	CheckedAt   time.Time         `json:"checked_at"`
}

type evidenceReport struct {
	Order struct {
		ID rental.OrderID `json:"id"`
		No string         `json:"no"`
	} `json:"order"`
	Chain struct {
		Algorithm string `json:"algorithm"`
		Genesis   string `json:"genesis"`
		Count     int    `json:"count"`
		Head      string `json:"head"`
	} `json:"chain"`
	Verification verification       `json:"verification"`
	Items        []evidenceItemView `json:"items"`
}

// evidenceFor verifies an order's chain and its inspections and returns the
// report with the items (contents opened).
func (h *rentalHandlers) evidenceFor(c *fiber.Ctx, o *rental.Order) (evidenceReport, []rental.Evidence, error) {
	ctx := c.UserContext()
	items, head, err := h.r.DB.Evidence(ctx, o.ID)
	if err != nil {
		return evidenceReport{}, nil, err
	}
	ins, err := h.r.DB.Inspections(ctx, o.ID)
	if err != nil {
		return evidenceReport{}, nil, err
	}
	var rep evidenceReport
	rep.Order.ID, rep.Order.No = o.ID, o.No
	rep.Chain.Algorithm = "link = SHA-256(prev_link ‖ content_sha256 ‖ metadata), metadata as in rental.Evidence (tacklegate-evidence-v1)"
	rep.Chain.Genesis, rep.Chain.Count, rep.Chain.Head = rental.GenesisLink, head.Count, head.Link
	v := verification{OK: true, CheckedAt: shanghaiTime(h.r.now()), Inspections: []inspectionCheck{}}
	if brk := rental.VerifyChainHead(items, head); brk != nil {
		v.OK, v.Message = false, brk.Message()
		v.Break = &chainBreakView{Index: brk.Index, Seq: brk.Seq, ID: brk.ID, Reason: brk.Reason, Message: brk.Message()}
	}
	byID := map[rental.EvidenceID]rental.Evidence{}
	for _, e := range items {
		byID[e.ID] = e
	}
	for _, in := range ins {
		ok := in.MatchesRecord(byID[in.EvidenceID])
		v.Inspections = append(v.Inspections, inspectionCheck{ID: in.ID, Kind: in.Kind, EvidenceID: in.EvidenceID, MatchesRecord: ok,
			Confirmed: in.Confirmed(), ConfirmEvidenceID: in.ConfirmEvidenceID})
		if !ok && v.OK {
			v.OK = false
			v.Message = fmt.Sprintf("%s验货记录与证据链中的记录不一致 (the %s inspection differs from its chained record)", inspectionLabel(in.Kind), in.Kind)
		}
	}
	if v.OK {
		v.Message = fmt.Sprintf("证据链完整，共 %d 项 (evidence chain intact: %d items)", len(items), len(items))
	}
	rep.Verification = v
	for _, e := range items {
		rep.Items = append(rep.Items, evidenceItemView{
			ID: e.ID, Seq: e.Seq, Kind: e.Kind, MediaType: e.MediaType, Name: e.Name, Ref: e.Ref, Actor: e.Actor,
			CreatedAt: shanghaiTime(e.CreatedAt), Size: e.Size, External: e.External, Unreadable: e.Unreadable,
			SHA256: e.ContentHash, PrevLink: e.PrevLink, Link: e.Link,
		})
	}
	if rep.Items == nil {
		rep.Items = []evidenceItemView{}
	}
	return rep, items, nil
}

// evidence verifies the order's chain and answers JSON, or with
// ?format=zip every item's file, manifest.json (hashes, links and the
// verification) and a README on checking it by hand.
func (h *rentalHandlers) evidence(c *fiber.Ctx) error {
	o, err := h.visibleOrder(c)
	if err != nil {
		return err
	}
	rep, items, err := h.evidenceFor(c, o)
	if err != nil {
		return err
	}
	switch c.Query("format", "json") {
	case "json":
		for i := range rep.Items {
			if !rep.Items[i].External {
				rep.Items[i].URL = fmt.Sprintf("/api/v1/orders/%d/evidence/%d", o.ID, rep.Items[i].ID)
			}
		}
		return c.JSON(rep)
	case "zip":
	default:
		return rental.Errorf("orders.evidence", rental.KindInvalid, "format 应为 json 或 zip (format must be json or zip)")
	}
	b, err := evidenceZip(rep, items)
	if err != nil {
		return rental.Wrap("orders.evidence", rental.KindInternal, "", err)
	}
	Logger(c).Info("evidence exported", "order", o.ID, "items", len(items), "intact", rep.Verification.OK)
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="evidence-%s.zip"`, o.No))
	return c.Send(b)
}

func evidenceExt(e rental.Evidence) string {
	if ext, ok := photoTypes[e.MediaType]; ok {
		return ext
	}
	mt, _, _ := mime.ParseMediaType(e.MediaType)
	switch {
	case mt == "application/json":
		return ".json"
	case strings.HasPrefix(mt, "text/"):
		return ".txt"
	}
	return ".bin"
}

func evidenceZip(rep evidenceReport, items []rental.Evidence) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, e := range items {
		if e.External || e.Unreadable {
			continue // no file to give: the manifest says why
		}
		name := fmt.Sprintf("evidence/%04d-%s%s", e.Seq, e.Kind, evidenceExt(e))
		rep.Items[i].File = name
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: e.CreatedAt})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(e.Content); err != nil {
			return nil, err
		}
	}
	manifest, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name    string
		content []byte
	}{{"manifest.json", manifest}, {"README.txt", []byte(evidenceReadme(rep))}} {
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.content); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func evidenceReadme(rep evidenceReport) string {
	status := "完整 (intact)"
	if !rep.Verification.OK {
		status = "已被改动 (ALTERED): " + rep.Verification.Message
	}
	return "订单 " + rep.Order.No + " 的证据导出 (evidence export of order " + rep.Order.No + ")\n\n" +
		"校验结果 (verification): " + status + "\n" +
		"证据项数 (items): " + strconv.Itoa(rep.Chain.Count) + "，链尾 (chain head): " + rep.Chain.Head + "\n\n" +
		"manifest.json 列出每一项的 SHA-256 (sha256) 与链接 (prev_link, link)。\n" +
		"evidence/ 中每个文件的 SHA-256 应等于 manifest 中的 sha256，例如：sha256sum evidence/*\n" +
		"Each file's SHA-256 must equal its sha256 in manifest.json (check with: sha256sum evidence/*).\n" +
		"Each link is SHA-256(prev_link ‖ sha256 ‖ metadata); the first prev_link is the genesis (64 zeros),\n" +
		"and the last link must equal the chain head, so an edited, removed or reordered item shows.\n"
}

// evidenceItem serves one item's content (a photo to look at), after
// checking it belongs to the order the caller may see.
func (h *rentalHandlers) evidenceItem(c *fiber.Ctx) error {
	o, err := h.visibleOrder(c)
	if err != nil {
		return err
	}
	eid, err := strconv.ParseInt(c.Params("eid"), 10, 64)
	if err != nil || eid <= 0 {
		return rental.Errorf("orders.evidenceItem", rental.KindInvalid, "证据编号无效 (bad evidence id)")
	}
	e, err := h.r.DB.EvidenceItem(c.UserContext(), rental.EvidenceID(eid))
	if err != nil {
		return err
	}
	if e.OrderID != o.ID || e.External {
		return rental.Errorf("orders.evidenceItem", rental.KindNotFound, "证据不存在 (no such evidence item)")
	}
	c.Set(fiber.HeaderContentType, e.MediaType)
	c.Set("X-Content-SHA256", e.ContentHash)
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.Send(e.Content)
}
