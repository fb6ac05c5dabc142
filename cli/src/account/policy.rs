//! Whether an IAM role may call one action on one resource, from the role's policies, its
//! permissions boundary and the resource's own policy, as IAM decides it: an explicit Deny
//! wins, then something must allow and the boundary must too. Pure, so each rule is
//! unit-tested. What it cannot evaluate (a condition, a policy variable, a statement it
//! cannot read) makes it say it cannot tell, never guess; what it does not see
//! (organization SCPs, session policies) may still refuse what it allows.

use serde_json::Value;

/// One policy document, read, and named for messages (`inline policy invoke-hooks`).
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    /// `Version` 2012-10-17: `${...}` in a resource is a policy variable, not text.
    variables: bool,
    statements: Vec<Statement>,
}

/// A role's own policies (inline and attached) and its permissions boundary.
#[derive(Debug, Clone)]
pub struct RolePolicies {
    pub role_arn: String,
    pub policies: Vec<Policy>,
    pub boundary: Option<Policy>,
}

/// What IAM would decide, as far as the policies read tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// A Deny statement of this policy matches.
    Denied {
        policy: String,
    },
    /// No statement allows it.
    NotGranted,
    /// Allowed, but not by the role's permissions boundary.
    OutsideBoundary {
        boundary: String,
    },
    /// A statement of this policy decides it, and cannot be evaluated here.
    Unknown {
        policy: String,
        why: &'static str,
    },
}

#[derive(Debug, Clone)]
enum Statement {
    Read {
        deny: bool,
        actions: Names,
        resources: Names,
        principal: Principal,
        conditional: bool,
    },
    /// Not a statement this reads (an unknown effect, a missing element): it may match.
    Unreadable,
}

/// `Action`/`NotAction` or `Resource`/`NotResource`: the patterns, and whether they exclude.
#[derive(Debug, Clone)]
struct Names {
    not: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone)]
enum Principal {
    /// None named: an identity policy's statement, about whoever holds it.
    Holder,
    /// The `AWS` principals (ARNs, or `*`); none when only services are named.
    Aws(Vec<String>),
    /// `NotPrincipal`, or a shape not read here.
    Unknown,
}

/// A statement's or a policy set's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe(&'static str),
}

const UNREADABLE: &str = "a statement Shiplane cannot read";

impl Policy {
    /// A document as IAM answers it: URL-encoded (RFC 3986), or already plain JSON.
    pub fn from_iam(name: impl Into<String>, document: &str) -> Policy {
        let text = if document.trim_start().starts_with('{') {
            document.to_string()
        } else {
            percent_encoding::percent_decode_str(document)
                .decode_utf8_lossy()
                .into_owned()
        };
        Policy::parse(name, &text)
    }

    /// A JSON document; one that is not JSON reads as a single unreadable statement.
    pub fn parse(name: impl Into<String>, json: &str) -> Policy {
        let name = name.into();
        let Ok(doc) = serde_json::from_str::<Value>(json) else {
            return Policy {
                name,
                variables: false,
                statements: vec![Statement::Unreadable],
            };
        };
        let statements = match &doc["Statement"] {
            Value::Array(list) => list.iter().map(Statement::read).collect(),
            one @ Value::Object(_) => vec![Statement::read(one)],
            _ => vec![Statement::Unreadable],
        };
        Policy {
            name,
            variables: doc["Version"] == "2012-10-17",
            statements,
        }
    }
}

impl Statement {
    fn read(s: &Value) -> Statement {
        let deny = match s["Effect"].as_str() {
            Some("Allow") => false,
            Some("Deny") => true,
            _ => return Statement::Unreadable,
        };
        let (Some(actions), Some(resources)) = (
            Names::read(s, "Action", "NotAction"),
            Names::read(s, "Resource", "NotResource"),
        ) else {
            return Statement::Unreadable;
        };
        let conditional = match &s["Condition"] {
            Value::Null => false,
            Value::Object(c) => !c.is_empty(),
            _ => true,
        };
        Statement::Read {
            deny,
            actions,
            resources,
            principal: Principal::read(s),
            conditional,
        }
    }

    /// The statement's effect (`Some(true)`: Deny; `None`: unreadable, so either) and
    /// whether it applies to `req`.
    fn applies(&self, req: &Request<'_>, variables: bool) -> (Option<bool>, Tri) {
        let Statement::Read {
            deny,
            actions,
            resources,
            principal,
            conditional,
        } = self
        else {
            return (None, Tri::Maybe(UNREADABLE));
        };
        let action = actions.any(|p| {
            if glob(&p.to_ascii_lowercase(), &req.action.to_ascii_lowercase()) {
                Tri::Yes
            } else {
                Tri::No
            }
        });
        let resource = resources.any(|p| resource_matches(p, req.resource, variables));
        let principal = match req.principal {
            None => Tri::Yes,
            Some(role) => principal.covers(role),
        };
        let mut answer = all(&[action, resource, principal]);
        if answer == Tri::Yes && *conditional {
            answer = Tri::Maybe("a condition");
        }
        (Some(*deny), answer)
    }
}

impl Names {
    fn read(s: &Value, yes: &str, not: &str) -> Option<Names> {
        let (value, not) = match (&s[yes], &s[not]) {
            (v, Value::Null) if !v.is_null() => (v, false),
            (Value::Null, v) if !v.is_null() => (v, true),
            _ => return None,
        };
        let patterns = match value {
            Value::String(one) => vec![one.clone()],
            Value::Array(list) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        Some(Names { not, patterns })
    }

    /// Whether the name matches (for `Not…`: matches none of the patterns).
    fn any(&self, matches: impl Fn(&str) -> Tri) -> Tri {
        let found = any(self.patterns.iter().map(|p| matches(p)));
        if !self.not {
            return found;
        }
        match found {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            maybe => maybe,
        }
    }
}

impl Principal {
    fn read(s: &Value) -> Principal {
        if !s["NotPrincipal"].is_null() {
            return Principal::Unknown;
        }
        match &s["Principal"] {
            Value::Null => Principal::Holder,
            Value::String(any) if any == "*" => Principal::Aws(vec!["*".into()]),
            Value::Object(named) => match named.get("AWS") {
                None => Principal::Aws(Vec::new()),
                Some(Value::String(one)) => Principal::Aws(vec![one.clone()]),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .map_or(Principal::Unknown, Principal::Aws),
                Some(_) => Principal::Unknown,
            },
            _ => Principal::Unknown,
        }
    }

    /// Whether a resource policy's statement names `role` (an account's root does not: in
    /// the same account it only defers to the role's own policies).
    fn covers(&self, role: &str) -> Tri {
        match self {
            Principal::Holder => Tri::Maybe(UNREADABLE),
            Principal::Unknown => Tri::Maybe("a principal Shiplane cannot match to the role"),
            Principal::Aws(names) => any(names.iter().map(|n| {
                if n == "*" || n == role {
                    Tri::Yes
                } else if session_of(n, role) {
                    Tri::Maybe("a principal naming one session of the role")
                } else {
                    Tri::No
                }
            })),
        }
    }
}

/// `arn:aws:sts::1:assumed-role/NAME/SESSION` for `arn:aws:iam::1:role/PATH/NAME`.
fn session_of(principal: &str, role: &str) -> bool {
    let Some((head, path)) = role.split_once(":role/") else {
        return false;
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    let sts = head.replacen(":iam:", ":sts:", 1);
    principal.starts_with(&format!("{sts}:assumed-role/{name}/"))
}

/// One call: who (a resource policy's principal check; `None` for the role's own
/// policies), what and on what.
struct Request<'a> {
    principal: Option<&'a str>,
    action: &'a str,
    resource: &'a str,
}

/// What a set of policies says of a request: whether something allows it, whether
/// something denies it, each with the policy that says so.
struct Said<'a> {
    allow: (Tri, &'a str),
    deny: (Tri, &'a str),
}

fn said<'a>(policies: &[&'a Policy], req: &Request<'_>) -> Said<'a> {
    let mut out = Said {
        allow: (Tri::No, ""),
        deny: (Tri::No, ""),
    };
    for policy in policies {
        for statement in &policy.statements {
            let (deny, answer) = statement.applies(req, policy.variables);
            if deny != Some(false) {
                stronger(&mut out.deny, answer, &policy.name);
            }
            if deny != Some(true) {
                stronger(&mut out.allow, answer, &policy.name);
            }
        }
    }
    out
}

/// Keeps the strongest answer: yes over maybe over no.
fn stronger<'a>(kept: &mut (Tri, &'a str), answer: Tri, policy: &'a str) {
    let rank = |t: Tri| match t {
        Tri::Yes => 2,
        Tri::Maybe(_) => 1,
        Tri::No => 0,
    };
    if rank(answer) > rank(kept.0) {
        *kept = (answer, policy);
    }
}

/// Whether `role` may call `action` on `resource`. `resource_policy`: the resource's own
/// policy, when it has one (in the same account, it may allow what the role's do not).
pub fn access(
    role: &RolePolicies,
    resource_policy: Option<&Policy>,
    action: &str,
    resource: &str,
) -> Access {
    let own = Request {
        principal: None,
        action,
        resource,
    };
    let theirs = Request {
        principal: Some(&role.role_arn),
        ..own
    };
    let policies: Vec<&Policy> = role.policies.iter().collect();
    let identity = said(&policies, &own);
    let boundary = role.boundary.as_ref().map(|b| said(&[b], &own));
    let resource_side = resource_policy.map(|p| said(&[p], &theirs));
    let mut deny = identity.deny;
    for other in boundary.iter().chain(resource_side.iter()) {
        stronger(&mut deny, other.deny.0, other.deny.1);
    }
    if deny.0 == Tri::Yes {
        return Access::Denied {
            policy: deny.1.to_string(),
        };
    }
    let mut grant = identity.allow;
    if let Some(r) = &resource_side {
        stronger(&mut grant, r.allow.0, r.allow.1);
    }
    if grant.0 == Tri::No {
        return Access::NotGranted;
    }
    if let (Some(b), Some(policy)) = (&boundary, &role.boundary)
        && b.allow.0 == Tri::No
    {
        return Access::OutsideBoundary {
            boundary: policy.name.clone(),
        };
    }
    let bounded = boundary.map_or((Tri::Yes, ""), |b| b.allow);
    for (answer, policy) in [deny, grant, bounded] {
        if let Tri::Maybe(why) = answer {
            return Access::Unknown {
                policy: policy.to_string(),
                why,
            };
        }
    }
    Access::Allowed
}

fn all(parts: &[Tri]) -> Tri {
    if parts.contains(&Tri::No) {
        return Tri::No;
    }
    parts
        .iter()
        .copied()
        .find(|t| matches!(t, Tri::Maybe(_)))
        .unwrap_or(Tri::Yes)
}

fn any(parts: impl Iterator<Item = Tri>) -> Tri {
    let mut out = Tri::No;
    for t in parts {
        match t {
            Tri::Yes => return Tri::Yes,
            Tri::Maybe(_) => out = t,
            Tri::No => {}
        }
    }
    out
}

/// An ARN pattern against an ARN. A wildcard stays within its segment (partition,
/// service, region, account), except in the resource part, or in a pattern's last
/// segment when it ends the pattern early (`arn:aws:lambda:*` covers every function).
fn resource_matches(pattern: &str, arn: &str, variables: bool) -> Tri {
    let Some(pattern) = unescape(pattern, variables) else {
        return Tri::Maybe("a policy variable in a resource");
    };
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let segments: Vec<&str> = arn.splitn(parts.len(), ':').collect();
    if segments.len() < parts.len() {
        return Tri::No;
    }
    let matched = parts.iter().zip(&segments).all(|(p, s)| glob(p, s));
    if matched { Tri::Yes } else { Tri::No }
}

/// The pattern with IAM's escapes (`${*}`, `${?}`, `${$}`) made literal: an escaped `*`
/// or `?` becomes a private-use character that [`glob`] compares as the character itself.
/// `None`: the pattern holds a policy variable, which only the request's context fills.
fn unescape(pattern: &str, variables: bool) -> Option<String> {
    if !variables || !pattern.contains("${") {
        return Some(pattern.to_string());
    }
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (literal, len) = if tail.starts_with("${*}") {
            (LITERAL_STAR, 4)
        } else if tail.starts_with("${?}") {
            (LITERAL_ONE, 4)
        } else if tail.starts_with("${$}") {
            ('$', 4)
        } else {
            return None;
        };
        out.push(literal);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Some(out)
}

const LITERAL_STAR: char = '\u{F8FF}';
const LITERAL_ONE: char = '\u{F8FE}';

/// `*` any run of characters, `?` any one; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ti < t.len() {
        let literal = |c: char| match c {
            LITERAL_STAR => '*',
            LITERAL_ONE => '?',
            c => c,
        };
        if pi < p.len() && p[pi] == '*' {
            back = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || literal(p[pi]) == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((bp, bt)) = back {
            pi = bp + 1;
            ti = bt + 1;
            back = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
