//! The account check: what a deployed account lacks, or has set wrong, for the pipeline
//! file to release through it, each finding with its fix. Read-only: it describes, never
//! changes. `shiplane doctor` runs all of it; `shiplane config apply` runs the deployment
//! groups' part and refuses a group whose rollback cannot happen or whose blue task set is
//! kept forever, unless the file says so ([`shiplane::pipeline::GroupExpectation`]).
//!
//! [`rules`] decides from what was read (pure, unit-tested); [`read`] reads the account.

mod policy;
mod read;
mod rules;

use std::collections::BTreeMap;

use serde::Serialize;

pub use read::{AccountCheck, Reach};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A release would break, or a rollback could not happen.
    Error,
    /// Works, but not as safely as it could.
    Warning,
    /// Differs from what is checked for, as the pipeline file says it should.
    Note,
}

/// Which check a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Repository,
    Cluster,
    Service,
    DeploymentController,
    Container,
    Application,
    DeploymentGroup,
    /// The group's own auto-rollback (item 1: apply refuses it).
    GroupRollback,
    /// What the group does with the blue task set after a success (item 1: apply refuses it).
    GroupBlue,
    Alarm,
    HookFunction,
    /// A deployment group's service role, which CodeDeploy invokes the deploy-hook as.
    ServiceRole,
    ScheduleGroup,
    Migration,
    TaskFamily,
    /// AWS did not answer (permission, network): the thing could not be checked.
    Unreadable,
}

impl Check {
    /// The deployment group settings `config apply` holds a blue-green stage's group to.
    pub fn is_group_setting(self) -> bool {
        matches!(self, Check::GroupRollback | Check::GroupBlue)
    }
}

/// One thing missing or wrong, where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: Check,
    /// `None`: every environment (a repository, the hook function, the schedule group).
    pub environment: Option<String>,
    pub service: Option<String>,
    /// What was looked at, named: `CodeDeploy deployment group api/api-dev`.
    pub thing: String,
    pub problem: String,
    pub fix: String,
}

/// Everything one check found, and how many things it looked at where.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Things looked at, by environment (`None`: every environment).
    #[serde(skip)]
    pub checked: BTreeMap<Option<String>, usize>,
}

impl Report {
    fn looked_at(&mut self, environment: Option<&str>) {
        *self
            .checked
            .entry(environment.map(str::to_string))
            .or_default() += 1;
    }

    /// Adds a finding, once (two services in one environment may share a missing cluster).
    fn add(&mut self, finding: Finding) {
        if !self.findings.contains(&finding) {
            self.findings.push(finding);
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn total_checked(&self) -> usize {
        self.checked.values().sum()
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl Finding {
    /// Two lines a person reads: what is wrong, then the fix.
    pub fn text(&self) -> String {
        self.labelled(self.severity.as_str())
    }

    /// [`Finding::text`] under another label (`config apply` stores the file all the same).
    pub fn labelled(&self, label: &str) -> String {
        let service = self
            .service
            .as_deref()
            .map(|s| format!("{s}: "))
            .unwrap_or_default();
        format!(
            "{label}: {service}{} {}\n    fix: {}",
            self.thing, self.problem, self.fix
        )
    }
}

/// What `config apply` makes of its account check: a deployment group whose rollback
/// cannot happen or whose blue task set is kept forever is refused (nothing is stored); a
/// check AWS did not answer fails (`--no-check` applies without it); anything else the
/// check found comes back to be shown, and does not stop the apply.
pub async fn apply_gate(
    config: &aws_config::SdkConfig,
    pipeline: &shiplane::pipeline::Pipeline,
) -> Result<Vec<Finding>, crate::Failure> {
    let report = AccountCheck::new(config).groups(pipeline).await;
    let (refused, rest): (Vec<Finding>, Vec<Finding>) = report
        .findings
        .into_iter()
        .partition(|f| f.severity == Severity::Error && f.check.is_group_setting());
    if !refused.is_empty() {
        let mut out = String::from(
            "a deployment group would not roll back or keeps its blue task set forever, so nothing was stored:",
        );
        for f in &refused {
            out.push_str(&format!("\n  {}", f.text().replace('\n', "\n  ")));
        }
        out.push_str("\nFix the groups and apply again; or, where it is meant, say so in the file (keep_blue = true, group_rollback = false); or apply with --no-check to store it unchecked");
        return Err(crate::Failure::Refused(out));
    }
    if let Some(f) = rest.iter().find(|f| f.check == Check::Unreadable) {
        return Err(crate::Failure::Failed(format!(
            "cannot check the deployment groups, so nothing was stored: {} {}; {}; or apply with --no-check to store the file unchecked",
            f.thing, f.problem, f.fix
        )));
    }
    Ok(rest)
}
