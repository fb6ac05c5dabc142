//! The dashboard's HTML, rendered on the server from [`super::board`]'s structures: no
//! framework, a stylesheet, and a few lines of script that tick the bake countdowns and
//! refresh the page's content every few seconds. Every text from the table is escaped.

use std::fmt::Write;

use shiplane::release::{Release, StageState, Timestamp, Transition};

use super::board::{Board, LaneBoard, ReleaseTimeline};
use crate::render::ReleaseSummary;

/// What every page says about who acts and how.
pub struct Frame<'a> {
    pub actor: &'a str,
    pub token: &'a str,
    /// Whether changes are announced on SNS (a topic is configured).
    pub announced: bool,
    /// The outcome of the last action, shown once after its redirect.
    pub said: Option<&'a str>,
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A span of milliseconds as a person reads it: `4m 05s`, `2h 10m`, `3d 4h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A time of day in UTC, `06:41:07`; the full RFC 3339 time goes in a title.
fn clock(t: Timestamp) -> String {
    let full = crate::render::rfc3339(t);
    format!(
        "<time datetime=\"{full}\" title=\"{full}\">{}</time>",
        full.get(11..19).unwrap_or(&full)
    )
}

fn state_badge(state: StageState) -> String {
    format!(
        "<span class=\"st st-{0}\">{1}</span>",
        state.as_str(),
        state.as_str().replace('_', " ")
    )
}

fn release_link(r: &ReleaseSummary) -> String {
    format!(
        "<a class=\"rel\" href=\"/releases/{0}\" title=\"{0} {1}\">{2}</a>",
        esc(r.id.as_str()),
        esc(&r.digest),
        esc(&r.label)
    )
}

/// A row naming a release (left open for more on the same line).
fn release_row(key: &str, r: &ReleaseSummary, with_state: bool) -> String {
    let state = match r.state {
        Some(st) if with_state => state_badge(st),
        _ => String::new(),
    };
    format!(
        "<div class=\"row\"><span class=\"k\">{key}</span>{}{state}",
        release_link(r)
    )
}

/// A form whose button posts one action with the page's token.
fn action(frame: &Frame, verb: &str, label: &str, fields: &[(&str, &str)], reason: bool) -> String {
    let mut f = format!(
        "<form method=\"post\" action=\"/actions/{verb}\" class=\"act act-{verb}\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">",
        esc(frame.token)
    );
    for (k, v) in fields {
        let _ = write!(
            f,
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            esc(v)
        );
    }
    if reason {
        f.push_str("<input type=\"text\" name=\"reason\" placeholder=\"why (recorded)\" required>");
    }
    let _ = write!(f, "<button type=\"submit\">{}</button></form>", esc(label));
    f
}

const STYLE: &str = r#"
:root { --ink:#1d2330; --dim:#5f6b7a; --line:#d8dde4; --bg:#f4f6f9; --card:#fff;
  --ok:#1a7f37; --bad:#c62828; --run:#0b61c9; --wait:#a15c00; --off:#6e7781; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; color:var(--ink); background:var(--bg); }
header { background:#1d2330; color:#e8ecf1; padding:10px 20px; display:flex; gap:18px; align-items:baseline; flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
header h1 a { color:inherit; text-decoration:none; }
header .who { color:#c9d1db; }
header .who b { color:#fff; }
header .meta { margin-left:auto; color:#9aa6b4; font-size:12px; }
main { padding:16px 20px 40px; }
.said { background:#fff8e1; border:1px solid #f0d48a; padding:8px 12px; border-radius:6px; margin-bottom:14px; white-space:pre-wrap; }
.said.bad { background:#fdecea; border-color:#f1aaa4; }
.service { margin-bottom:18px; }
.service h2 { font-size:16px; margin:0 0 6px; }
.service h2 small { color:var(--dim); font-weight:normal; margin-left:6px; }
.lanes { display:grid; gap:0; align-items:stretch; }
.arrow { align-self:center; text-align:center; color:var(--dim); font-size:18px; width:28px; }
.lane { background:var(--card); border:1px solid var(--line); border-top:4px solid var(--off); border-radius:6px; padding:8px 10px; min-width:0; }
.lane.skip { background:transparent; border:1px dashed var(--line); color:var(--dim); display:flex; align-items:center; justify-content:center; }
.lane.s-succeeded { border-top-color:var(--ok); }
.lane.s-deploying,.lane.s-validating,.lane.s-migrating,.lane.s-baking { border-top-color:var(--run); }
.lane.s-awaiting_approval,.lane.s-queued { border-top-color:var(--wait); }
.lane.s-failed,.lane.s-rolled_back { border-top-color:var(--bad); }
.lane h3 { margin:0 0 4px; font-size:13px; text-transform:uppercase; letter-spacing:.6px; color:var(--dim); display:flex; gap:6px; align-items:center; flex-wrap:wrap; }
.row { margin:3px 0; display:flex; gap:6px; align-items:baseline; flex-wrap:wrap; }
.k { color:var(--dim); font-size:12px; min-width:58px; }
.rel { font-weight:600; color:var(--ink); }
.st { font-size:11px; padding:1px 6px; border-radius:9px; background:#eaeef2; color:var(--off); white-space:nowrap; }
.st-succeeded { background:#dafbe1; color:var(--ok); }
.st-deploying,.st-validating,.st-migrating,.st-baking { background:#ddf4ff; color:var(--run); }
.st-awaiting_approval,.st-queued { background:#fff1d6; color:var(--wait); }
.st-failed,.st-rolled_back { background:#ffebe9; color:var(--bad); }
.tag { font-size:11px; padding:1px 6px; border-radius:4px; background:#eaeef2; }
.tag.alarm { background:var(--bad); color:#fff; }
.tag.hold { background:#fff1d6; color:var(--wait); }
.bake { color:var(--run); font-variant-numeric:tabular-nums; }
.checks, .alarms { list-style:none; margin:2px 0; padding:0; font-size:12px; }
.checks li, .alarms li { margin:1px 0; }
.pass { color:var(--ok); } .fail { color:var(--bad); } .dim { color:var(--dim); }
.act { display:inline-flex; gap:4px; margin:4px 6px 0 0; }
.act input[type=text] { width:110px; font-size:12px; padding:2px 4px; border:1px solid var(--line); border-radius:4px; }
.act button { font-size:12px; padding:2px 8px; border-radius:4px; border:1px solid #8c959f; background:#f6f8fa; cursor:pointer; }
.act-approve button { background:var(--ok); color:#fff; border-color:var(--ok); }
.act-reject button, .act-cancel button { color:var(--bad); }
table.tl { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); }
table.tl th, table.tl td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; font-size:13px; }
table.tl th { background:#eef1f5; font-size:12px; color:var(--dim); font-weight:600; }
table.tl td.detail { max-width:520px; overflow-wrap:anywhere; color:#39414d; }
.facts { color:var(--dim); margin:0 0 12px; overflow-wrap:anywhere; }
h2.rel-title { margin:4px 0; font-size:18px; }
h3.sec { font-size:14px; margin:18px 0 6px; }
nav a { color:var(--run); }
footer { color:var(--dim); font-size:12px; padding:0 20px 20px; }
"#;

const SCRIPT: &str = r#"
function span(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h ' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
}
function tick() {
  for (const el of document.querySelectorAll('[data-until]')) {
    const left = Number(el.dataset.until) - Date.now();
    el.textContent = left > 0 ? 'bake ends in ' + span(left) : 'bake over: promoting';
  }
}
async function refresh() {
  const busy = document.activeElement && document.activeElement.tagName === 'INPUT';
  const typed = [...document.querySelectorAll('input[name=reason]')].some(i => i.value);
  if (busy || typed) return;
  try {
    const r = await fetch(location.pathname, {headers: {'Accept': 'text/html'}});
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), 'text/html');
    const main = fresh.querySelector('main');
    if (main) { document.querySelector('main').replaceWith(main); tick(); }
  } catch (e) { /* the dashboard stopped: keep what is shown */ }
}
tick();
setInterval(tick, 1000);
setInterval(refresh, 5000);
"#;

fn document(title: &str, frame: &Frame, body: &str) -> String {
    let announced = if frame.announced {
        "announced on the SNS topic"
    } else {
        "not announced: no SNS topic configured (SHIPLANE_TOPIC_ARN)"
    };
    let said = frame.said.map_or_else(String::new, |s| {
        let class = if s.starts_with("refused") || s.starts_with("error") {
            "said bad"
        } else {
            "said"
        };
        format!("<div class=\"{class}\" role=\"status\">{}</div>", esc(s))
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <header><h1><a href=\"/\">Shiplane</a></h1>\
         <span class=\"who\">acting as <b>{actor}</b>: buttons use your AWS credentials, \
         as the <code>shiplane</code> CLI does, and history records you as <b>{actor}</b>; changes are {announced}</span>\
         </header><main>{said}{body}</main>\
         <footer>Refreshes every 5 s. JSON: <a href=\"/api/board\">/api/board</a>, /api/releases/ID. \
         Stop with Ctrl-C in the terminal that runs <code>shiplane dashboard</code>.</footer>\
         <script>{SCRIPT}</script></body></html>\n",
        title = esc(title),
        actor = esc(frame.actor),
    )
}

/// The pipeline view: each service a row, its lanes in promotion order.
pub fn board(board: &Board, frame: &Frame) -> String {
    let mut body = format!(
        "<p class=\"facts\">table <b>{}</b> · pipeline version {} · read at {} UTC</p>",
        esc(&board.table),
        board.pipeline_version,
        clock(board.at)
    );
    let columns = board.environments.len().max(1);
    let template = vec!["minmax(0,1fr)"; columns].join(" 28px ");
    for service in &board.services {
        let _ = write!(
            body,
            "<section class=\"service\" id=\"svc-{0}\"><h2>{0}<small>{1}</small></h2>\
             <div class=\"lanes\" style=\"grid-template-columns:{template}\">",
            esc(&service.name),
            service.kind
        );
        for (i, env) in board.environments.iter().enumerate() {
            if i > 0 {
                body.push_str("<div class=\"arrow\">→</div>");
            }
            match service.lanes.iter().find(|l| &l.status.environment == env) {
                Some(lane) => body.push_str(&lane_card(lane, frame, board.at)),
                None => {
                    let _ = write!(
                        body,
                        "<div class=\"lane skip\">{} (not released here)</div>",
                        esc(env)
                    );
                }
            }
        }
        body.push_str("</div></section>");
    }
    document("Shiplane dashboard", frame, &body)
}

/// One lane of the board: its releases, checks, alarms and buttons.
fn lane_card(lane: &LaneBoard, frame: &Frame, now: Timestamp) -> String {
    let mut c = lane_heading(lane);
    lane_releases(&mut c, lane, now);
    lane_checks(&mut c, lane);
    lane_alarms(&mut c, lane);
    for (key, r, with_state) in [
        ("next", &lane.status.queued, true),
        ("known good", &lane.status.last_known_good, false),
    ] {
        if let Some(r) = r {
            c.push_str(&release_row(key, r, with_state));
            c.push_str("</div>");
        }
    }
    let actions = lane_actions(lane, frame);
    if !actions.is_empty() {
        let _ = write!(c, "<div class=\"actions\">{actions}</div>");
    }
    c.push_str("</div>");
    c
}

/// A lane card's opening: its environment, and what holds it (a pause, a freeze, alarms).
fn lane_heading(lane: &LaneBoard) -> String {
    let s = &lane.status;
    let class = s.state.map_or("none", StageState::as_str);
    let mut c = format!(
        "<div class=\"lane s-{class}\" data-lane=\"{}/{}\"><h3>{}",
        esc(&s.service),
        esc(&s.environment),
        esc(&s.environment)
    );
    if let Some(by) = &s.paused_by {
        let _ = write!(
            c,
            "<span class=\"tag hold\" title=\"{}\">paused by {}</span>",
            esc(lane.paused_reason.as_deref().unwrap_or_default()),
            esc(by)
        );
    }
    if s.frozen {
        c.push_str("<span class=\"tag hold\">frozen</span>");
    }
    for held in &s.held_by {
        let _ = write!(
            c,
            "<span class=\"tag alarm\">held: {} in ALARM</span>",
            esc(held)
        );
    }
    c.push_str("</h3>");
    c
}

/// The release running in the lane and the one in flight (how long, and its bake).
fn lane_releases(c: &mut String, lane: &LaneBoard, now: Timestamp) {
    let s = &lane.status;
    let same = |a: &Option<ReleaseSummary>, b: &Option<ReleaseSummary>| {
        a.as_ref().map(|r| &r.id) == b.as_ref().map(|r| &r.id)
    };
    match &s.current {
        // A release that runs while it bakes is shown once, in flight.
        Some(_) if same(&s.current, &s.in_flight) => {}
        Some(r) => {
            c.push_str(&release_row("running", r, true));
            c.push_str("</div>");
        }
        None => c.push_str("<div class=\"row\"><span class=\"k\">running</span><span class=\"dim\">nothing yet</span></div>"),
    }
    if let Some(r) = &s.in_flight {
        c.push_str(&release_row("in flight", r, true));
        if let Some(stage) = &lane.in_flight_stage {
            let _ = write!(
                c,
                "<span class=\"dim\">{} ago</span>",
                span(now.0.saturating_sub(stage.since.0))
            );
            if let Some(until) = stage.bake_until() {
                let text = if until.0 > now.0 {
                    format!("bake ends in {}", span(until.0 - now.0))
                } else {
                    "bake over: promoting".to_string()
                };
                let _ = write!(
                    c,
                    "</div><div class=\"row\"><span class=\"k\">bake</span><span class=\"bake\" data-until=\"{}\">{text}</span>",
                    until.0
                );
            }
        }
        c.push_str("</div>");
    }
}

/// The newest checks of the lane's release.
fn lane_checks(c: &mut String, lane: &LaneBoard) {
    if !lane.checks.is_empty() {
        c.push_str("<div class=\"row\"><span class=\"k\">checks</span><ul class=\"checks\">");
        for check in &lane.checks {
            let (mark, class) = if check.passed {
                ("✔", "pass")
            } else {
                ("✘", "fail")
            };
            let _ = write!(
                c,
                "<li class=\"{class}\" title=\"{}\">{mark} {}{} <span class=\"dim\">{}</span></li>",
                esc(&check.detail),
                esc(&check.name),
                check
                    .millis
                    .map(|ms| format!(" {ms} ms"))
                    .unwrap_or_default(),
                clock(check.at)
            );
        }
        c.push_str("</ul></div>");
    }
}

/// The alarms the lane's stage watches, with the state last seen.
fn lane_alarms(c: &mut String, lane: &LaneBoard) {
    if !lane.alarms.is_empty() {
        c.push_str("<div class=\"row\"><span class=\"k\">alarms</span><ul class=\"alarms\">");
        for alarm in &lane.alarms {
            let class = match alarm.state {
                Some("ALARM") => "fail",
                Some("OK") => "pass",
                _ => "dim",
            };
            let _ = write!(
                c,
                "<li class=\"{class}\">● {} <span class=\"dim\">{}</span></li>",
                esc(&alarm.name),
                alarm.state.unwrap_or("not seen yet")
            );
        }
        c.push_str("</ul></div>");
    }
}

/// The buttons a lane offers: approve or reject what waits, cancel what is in flight, roll
/// back what runs.
fn lane_actions(lane: &LaneBoard, frame: &Frame) -> String {
    let s = &lane.status;
    let here = [
        ("environment", s.environment.as_str()),
        ("service", s.service.as_str()),
    ];
    let mut actions = String::new();
    if let Some(r) = &s.queued {
        let mut fields = here.to_vec();
        fields.push(("release", r.id.as_str()));
        if r.state == Some(StageState::AwaitingApproval) {
            actions.push_str(&action(
                frame,
                "approve",
                &format!("Approve {}", r.label),
                &fields,
                false,
            ));
        }
        actions.push_str(&action(
            frame,
            "reject",
            &format!("Reject {}", r.label),
            &fields,
            true,
        ));
    }
    if let Some(r) = &s.in_flight {
        let mut fields = here.to_vec();
        fields.push(("release", r.id.as_str()));
        actions.push_str(&action(
            frame,
            "cancel",
            &format!("Cancel {}", r.label),
            &fields,
            true,
        ));
    }
    if s.current.is_some() || s.last_known_good.is_some() {
        actions.push_str(&action(frame, "rollback", "Roll back", &here, true));
    }
    actions
}

/// One release: where it is in each environment, and its timeline.
pub fn timeline(t: &ReleaseTimeline, frame: &Frame) -> String {
    let r: &Release = &t.release;
    let mut body = format!(
        "<nav><a href=\"/\">← every service</a></nav>\
         <h2 class=\"rel-title\">{} {} <small class=\"dim\">{}</small></h2>\
         <p class=\"facts\">{} · pushed {} UTC · tags {}</p>",
        esc(&r.service),
        esc(&r.label()),
        esc(r.id.as_str()),
        esc(&r.image_ref()),
        clock(r.pushed_at),
        esc(&r.tags.join(", "))
    );
    let mut envs = t.environments.clone();
    envs.extend(
        r.stages
            .keys()
            .filter(|e| !t.environments.contains(e))
            .cloned(),
    );
    body.push_str(
        "<h3 class=\"sec\">Environments</h3><table class=\"tl stages\"><tr><th>environment</th><th>state</th>\
         <th>since</th><th>approved by</th><th>reason</th><th>deployment</th><th></th></tr>",
    );
    for env in &envs {
        let Some(stage) = r.stages.get(env) else {
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"dim\" colspan=\"6\">not reached</td></tr>",
                esc(env)
            );
            continue;
        };
        let back = format!("/releases/{}", r.id);
        let fields = [
            ("environment", env.as_str()),
            ("service", r.service.as_str()),
            ("release", r.id.as_str()),
            ("back", back.as_str()),
        ];
        let mut actions = String::new();
        if stage.state() == StageState::AwaitingApproval {
            actions.push_str(&action(frame, "approve", "Approve", &fields, false));
        }
        if stage.state().is_waiting() {
            actions.push_str(&action(frame, "reject", "Reject", &fields, true));
        }
        if stage.state().is_in_flight() {
            actions.push_str(&action(frame, "cancel", "Cancel", &fields, true));
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            esc(env),
            state_badge(stage.state()),
            clock(stage.since),
            esc(stage.approved_by.as_deref().unwrap_or("-")),
            esc(stage.reason.as_deref().unwrap_or("-")),
            esc(stage.started().unwrap_or("-")),
        );
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<h3 class=\"sec\">Timeline ({} transitions, oldest first)</h3>",
        t.history.len()
    );
    body.push_str(&transitions_table(&t.history));
    document(
        &format!("{} {} · Shiplane", r.service, r.label()),
        frame,
        &body,
    )
}

fn transitions_table(history: &[Transition]) -> String {
    let mut out = String::from(
        "<table class=\"tl timeline\"><tr><th>time (UTC)</th><th>+</th><th>environment</th>\
         <th>from → to</th><th>cause</th><th>actor</th><th>detail</th></tr>",
    );
    let first = history.first().map_or(0, |t| t.at.0);
    for t in history {
        let moved = match (t.from, t.to) {
            (Some(a), Some(b)) if a != b => format!("{} → {}", state_badge(a), state_badge(b)),
            (None, Some(b)) => format!("→ {}", state_badge(b)),
            (Some(a), _) => state_badge(a),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<tr class=\"c-{cause}\"><td>{}</td><td class=\"dim\">{}</td><td>{}</td><td>{moved}</td>\
             <td>{cause}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
            clock(t.at),
            span(t.at.0.saturating_sub(first)),
            esc(&t.environment),
            esc(t.actor.as_deref().unwrap_or("")),
            esc(t.detail.as_deref().unwrap_or("")),
            cause = t.cause.as_str(),
        );
    }
    out.push_str("</table>");
    out
}

/// A page that says what went wrong and what to do.
pub fn problem(message: &str, frame: &Frame) -> String {
    document(
        "Shiplane dashboard: problem",
        frame,
        &format!(
            "<nav><a href=\"/\">← every service</a></nav><div class=\"said bad\">{}</div>",
            esc(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_break_out_of_text_or_attributes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'q'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"
        );
    }

    #[test]
    fn spans_read_like_a_person_says_them() {
        assert_eq!(span(4_000), "4s");
        assert_eq!(span(245_000), "4m 05s");
        assert_eq!(span(7_800_000), "2h 10m");
        assert_eq!(span(273_600_000), "3d 4h");
    }
}
