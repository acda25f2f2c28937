package claudeconsole

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/console"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/health"
)

// usersPage lists the accounts with their actions.
func (q *request) usersPage() error { return q.usersWith(http.StatusOK, "") }

func (q *request) usersWith(status int, errMsg string) error {
	accts, err := q.h.console.Service.Users.List(q.r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return q.render(status, "users", "Users", struct {
		Accounts []auth.Account
		Self     string
	}{accts, q.user.Username}, errMsg)
}

// sessionsPage lists every user's sessions.
func (q *request) sessionsPage() error { return q.sessionsWith(http.StatusOK, "") }

func (q *request) sessionsWith(status int, errMsg string) error {
	list, err := q.h.console.SessionViews(q.r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	var total int64
	for _, s := range list {
		total += max(s.Size, 0)
	}
	return q.render(status, "sessions", "Sessions", struct {
		Sessions []console.SessionView
		Total    int64
	}{list, total}, errMsg)
}

// runView is a running run with its owner's name.
type runView struct {
	executor.RunInfo
	Owner string
}

// loadView is a user's executor share with the user's name.
type loadView struct {
	executor.UserLoad
	Owner string
}

// executorPage shows the runs, the queue and each user's share.
func (q *request) executorPage() error {
	ctx, cancel := context.WithTimeout(q.r.Context(), 3*time.Second)
	defer cancel()
	availErr := q.h.exec.IsAvailable(ctx)
	names, err := q.h.console.Usernames(q.r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	var runs []runView
	for _, r := range q.h.exec.Runs() {
		runs = append(runs, runView{r, names[r.UserID]})
	}
	var load []loadView
	for _, l := range q.h.exec.Load() {
		load = append(load, loadView{l, names[l.UserID]})
	}
	avail := "available"
	if availErr != nil {
		avail = "unavailable: " + availErr.Error()
	}
	return q.render(http.StatusOK, "executor", "Executor", struct {
		Available string
		Stats     executor.Stats
		Runs      []runView
		Load      []loadView
	}{avail, q.h.exec.Stats(), runs, load}, "")
}

// serviceView is one health check's result.
type serviceView struct {
	Name string
	health.Service
}

// healthPage runs the checks behind /api/health and shows them in full.
func (q *request) healthPage() error {
	rep := q.h.health.Run(q.r.Context(), 3*time.Second)
	var services []serviceView
	for name, s := range rep.Services {
		services = append(services, serviceView{name, s})
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	return q.render(http.StatusOK, "health", "Health", struct {
		Status   string
		Ready    bool
		Services []serviceView
	}{rep.Status, rep.Ready(), services}, "")
}

// zoneView is the refusals of one rate-limit zone.
type zoneView struct {
	Zone    string
	Refused float64
}

// banView is one running ban.
type banView struct {
	auth.Ban
	Left time.Duration
}

// limitsPage shows the rate-limit refusals per zone (since the process
// started) and the running sign-in bans.
func (q *request) limitsPage() error { return q.limitsWith(http.StatusOK, "") }

func (q *request) limitsWith(status int, errMsg string) error {
	var zones []zoneView
	if q.h.registry != nil {
		families, err := q.h.registry.Gather()
		if err == nil {
			for _, f := range families {
				if f.GetName() != "claude_gateway_rate_limit_refused_total" {
					continue
				}
				for _, m := range f.GetMetric() {
					zone := ""
					for _, l := range m.GetLabel() {
						if l.GetName() == "zone" {
							zone = l.GetValue()
						}
					}
					zones = append(zones, zoneView{zone, m.GetCounter().GetValue()})
				}
			}
		}
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].Zone < zones[j].Zone })
	bans, err := q.h.console.Bans(q.r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	now := time.Now()
	views := make([]banView, 0, len(bans))
	for _, b := range bans {
		views = append(views, banView{b, b.Until.Sub(now).Round(time.Second)})
	}
	return q.render(status, "limits", "Rate limits and bans", struct {
		Zones []zoneView
		Bans  []banView
	}{zones, views}, errMsg)
}

// auditTimeLayout is how the filter's time fields are written (UTC), the
// format of an HTML datetime-local input.
const auditTimeLayout = "2006-01-02T15:04"

// auditPage shows the audit trail, filtered and paged.
func (q *request) auditPage() error {
	v := q.r.URL.Query()
	f := audit.Filter{User: auth.NormalizeUsername(v.Get("user")), Kind: audit.Kind(v.Get("kind")), Limit: 50}
	var errMsg string
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(auditTimeLayout, s)
			if err != nil {
				errMsg = "Times are written 2006-01-02T15:04 (UTC)."
				continue
			}
			*p.dst = t
		}
	}
	if b := v.Get("before"); b != "" {
		f.Before, _ = strconv.ParseInt(b, 10, 64)
	}
	names, err := q.h.console.Usernames(q.r.Context())
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if f.User != "" {
		for id, name := range names {
			if name == f.User {
				f.UserID = id
			}
		}
	}
	page, err := audit.Query(q.r.Context(), q.h.db, f)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	type eventView struct {
		audit.Event
		ActorName string
		Details   string
	}
	events := make([]eventView, 0, len(page.Events))
	for _, e := range page.Events {
		ev := eventView{Event: e, ActorName: e.Actor}
		if ev.ActorName == "" && e.ActorID != "" {
			ev.ActorName = names[e.ActorID]
		}
		var parts []string
		for k, val := range e.Details {
			parts = append(parts, k+"="+val)
		}
		sort.Strings(parts)
		ev.Details = strings.Join(parts, " ")
		events = append(events, ev)
	}
	var older string
	if page.Next != 0 {
		next := url.Values{}
		for _, k := range []string{"user", "kind", "since", "until"} {
			if s := v.Get(k); s != "" {
				next.Set(k, s)
			}
		}
		next.Set("before", strconv.FormatInt(page.Next, 10))
		older = q.h.Prefix + "/audit?" + next.Encode()
	}
	return q.render(http.StatusOK, "audit", "Audit trail", struct {
		Events           []eventView
		Kinds            []audit.Kind
		User, Kind       string
		Since, Until     string
		Older, FirstPage string
		Paged            bool
	}{events, audit.Kinds, v.Get("user"), v.Get("kind"), v.Get("since"), v.Get("until"), older,
		q.h.Prefix + "/audit", f.Before != 0}, errMsg)
}
