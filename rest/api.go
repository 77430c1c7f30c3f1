package rest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/agentbot/registry/ent"
	"github.com/agentbot/registry/errs"
	"github.com/agentbot/registry/fleet"
	"github.com/agentbot/registry/graph"
	"github.com/agentbot/registry/graph/model"
)

// API is the REST layer: the documented endpoints over the resolvers.
type API struct {
	Resolver     *graph.Resolver
	DashboardURL string
	Log          *slog.Logger
	// WriteTimeout is the server's; each chunk of a streamed listing gets
	// it anew (see writeStream).
	WriteTimeout time.Duration
}

// The documented endpoints; routes.go puts them on their paths.

// ValidateKey is POST /api/validate-key.
func (a *API) ValidateKey() http.Handler {
	return a.handler(endpoint{http.MethodPost, a.validateKey})
}

// RegisterHome is POST /api/register-home.
func (a *API) RegisterHome() http.Handler {
	return a.handler(endpoint{http.MethodPost, a.register(fleet.ModeHome)})
}

// RegisterLink is POST /api/register-link.
func (a *API) RegisterLink() http.Handler {
	return a.handler(endpoint{http.MethodPost, a.register(fleet.ModeLink)})
}

// Installations is GET /api/installations.
func (a *API) Installations() http.Handler {
	return a.handler(endpoint{http.MethodGet, a.installations})
}

// Heartbeat is POST /api/heartbeat.
func (a *API) Heartbeat() http.Handler {
	return a.handler(endpoint{http.MethodPost, a.heartbeat})
}

type validKey struct {
	Valid    bool       `json:"valid"`
	UserID   string     `json:"userId"`
	Plan     fleet.Plan `json:"plan"`
	Features []string   `json:"features"`
}

// validateKey is POST /api/validate-key: the viewer query.
func (a *API) validateKey(r *http.Request) (any, error) {
	v, err := a.Resolver.Query().Viewer(r.Context())
	if err != nil {
		return nil, err
	}
	return validKey{Valid: true, UserID: v.UserID, Plan: v.Plan, Features: v.Features}, nil
}

type registered struct {
	Success      bool   `json:"success"`
	Message      string `json:"message"`
	DashboardURL string `json:"dashboardUrl"`
}

// register is POST /api/register-home and /api/register-link: the
// registerInstallation mutation. register-link always registers mode link,
// whatever the body says; register-home takes the body's mode, default home.
func (a *API) register(endpointMode fleet.Mode) func(*http.Request) (any, error) {
	message := "Home installation registered"
	if endpointMode == fleet.ModeLink {
		message = "OpenClaw instance linked"
	}
	return func(r *http.Request) (any, error) {
		body, err := decodeBody(r, "userId", "mode", "gatewayToken")
		if err != nil {
			return nil, err
		}
		input := model.RegisterInstallationInput{GatewayToken: body["gatewayToken"]}
		if userID := body["userId"]; userID != nil {
			input.UserID = *userID
		}
		mode := endpointMode
		if bodyMode := body["mode"]; endpointMode == fleet.ModeHome && bodyMode != nil {
			mode = fleet.Mode(*bodyMode)
		}
		input.Mode = &mode
		if _, err := a.Resolver.Mutation().RegisterInstallation(r.Context(), input); err != nil {
			return nil, err
		}
		return registered{Success: true, Message: message, DashboardURL: a.DashboardURL}, nil
	}
}

type installationPage struct {
	Success       bool                  `json:"success"`
	Count         int                   `json:"count"`
	Installations []installationSummary `json:"installations"`
	NextCursor    *cursor               `json:"nextCursor"`
}

type installationSummary struct {
	UserID       string       `json:"userId"`
	Mode         fleet.Mode   `json:"mode"`
	RegisteredAt timestamp    `json:"registeredAt"`
	LastSeen     timestamp    `json:"lastSeen"`
	Status       fleet.Status `json:"status"`
}

// The REST listing's optional paging: ?limit=N&cursor=C.
const maxListLimit = 1000

var listOrder = &ent.InstallationOrder{Direction: "DESC", Field: ent.InstallationOrderFieldLastSeen}

// installations is GET /api/installations, newest lastSeen first. Without
// paging parameters it streams every installation in the caller's scope
// (ListInstallations); with ?limit (and ?cursor) it answers one page of the
// installations query and a nextCursor, null on the last page.
func (a *API) installations(r *http.Request) (any, error) {
	ctx := r.Context()
	query := r.URL.Query()
	if !query.Has("limit") && !query.Has("cursor") {
		return stream(func(w *bufio.Writer) error { return a.streamInstallations(ctx, w) }), nil
	}
	limit := 100
	if query.Has("limit") {
		n, err := strconv.Atoi(query.Get("limit"))
		if err != nil || n < 1 || n > maxListLimit {
			return nil, errs.New(errs.Invalid, "limit must be a whole number from 1 to %d", maxListLimit)
		}
		limit = n
	}
	var after *ent.Cursor
	if query.Has("cursor") {
		after = &ent.Cursor{}
		if err := after.UnmarshalGQL(query.Get("cursor")); err != nil {
			return nil, errs.New(errs.Invalid, "cursor is not one this server returned")
		}
	}
	conn, err := a.Resolver.Query().Installations(ctx, after, &limit, nil, nil, listOrder, nil)
	if err != nil {
		return nil, err
	}
	page := installationPage{Success: true, Installations: make([]installationSummary, 0, len(conn.Edges))}
	for _, edge := range conn.Edges {
		page.Installations = append(page.Installations, a.summarize(ctx, edge.Node))
	}
	page.Count = len(page.Installations)
	if conn.PageInfo.HasNextPage {
		page.NextCursor = (*cursor)(conn.PageInfo.EndCursor)
	}
	return page, nil
}

// streamInstallations writes the documented listing one installation at a
// time: {"success":true,"count":N,"installations":[…]}.
func (a *API) streamInstallations(ctx context.Context, w *bufio.Writer) error {
	first := true
	var item bytes.Buffer
	enc := json.NewEncoder(&item)
	enc.SetEscapeHTML(false)
	start := func(count int) error {
		_, err := fmt.Fprintf(w, `{"success":true,"count":%d,"installations":[`, count)
		return err
	}
	each := func(inst *ent.Installation) error {
		if !first {
			w.WriteByte(',')
		}
		first = false
		item.Reset()
		if err := enc.Encode(a.summarize(ctx, inst)); err != nil {
			return err
		}
		_, err := w.Write(bytes.TrimSuffix(item.Bytes(), []byte("\n")))
		return err
	}
	if err := a.Resolver.ListInstallations(ctx, start, each); err != nil {
		return err
	}
	_, err := w.WriteString("]}\n")
	return err
}

func (a *API) summarize(ctx context.Context, inst *ent.Installation) installationSummary {
	status, _ := a.Resolver.Installation().Status(ctx, inst)
	return installationSummary{
		UserID:       inst.UserID,
		Mode:         inst.Mode,
		RegisteredAt: timestamp(inst.RegisteredAt),
		LastSeen:     timestamp(inst.LastSeen),
		Status:       status,
	}
}

type beat struct {
	Success   bool      `json:"success"`
	Timestamp timestamp `json:"timestamp"`
}

// heartbeat is POST /api/heartbeat: the heartbeat mutation. No key is
// needed, the body may be empty, and an unknown userId is acknowledged.
func (a *API) heartbeat(r *http.Request) (any, error) {
	body, err := decodeBody(r, "userId")
	if err != nil {
		return nil, err
	}
	userID := ""
	if id := body["userId"]; id != nil {
		userID = *id
	}
	hb, err := a.Resolver.Mutation().Heartbeat(r.Context(), userID)
	if err != nil {
		return nil, err
	}
	return beat{Success: true, Timestamp: timestamp(hb.Timestamp)}, nil
}

// cursor is a page cursor in JSON: the same opaque string GraphQL uses.
type cursor ent.Cursor

func (c cursor) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	ent.Cursor(c).MarshalGQL(&b)
	return b.Bytes(), nil
}

// timestamp is an RFC 3339 time in UTC ending in Z, to the second, as the
// registration API shows them.
type timestamp time.Time

func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(time.RFC3339) + `"`), nil
}
