//! The triggers of data jobs: the EventBridge rule targets and Scheduler schedules whose
//! ECS target names a task-definition revision. A data-job stage moves every one pinned to
//! a revision of its families (`family:N`) to the revision it registered, all or none: a
//! move that fails puts back the ones this action moved before it.
//!
//! What is pure lives here (which triggers match, the plan, the compensation) and is
//! driven through [`TriggerPort`], so the simulation runs the same code over its world;
//! `sdk` is the port on Scheduler and EventBridge.

mod sdk;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;

use super::DeployError;

pub use sdk::AwsTriggers;

/// Which trigger: a schedule of a group, or one target of a rule on an event bus.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerId {
    Schedule {
        group: String,
        name: String,
    },
    RuleTarget {
        bus: String,
        rule: String,
        target: String,
    },
}

impl fmt::Display for TriggerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriggerId::Schedule { group, name } => write!(f, "schedule {group}/{name}"),
            TriggerId::RuleTarget { bus, rule, target } => {
                write!(f, "rule {bus}/{rule} target {target}")
            }
        }
    }
}

/// A trigger whose target runs an ECS task, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub id: TriggerId,
    /// The target's ARN: the ECS cluster the task runs in.
    pub cluster: String,
    /// The task definition the target names: a revision ARN, or a family's ARN without
    /// `:N` (the newest ACTIVE revision when it fires).
    pub task_definition: String,
}

/// A task definition as a trigger names it: its family, and its revision when pinned.
pub(crate) fn task_definition_of(name: &str) -> Option<(&str, Option<u32>)> {
    if name.starts_with("arn:") && !name.contains(":task-definition/") {
        return None;
    }
    let last = name.rsplit('/').next()?;
    match last.rsplit_once(':') {
        Some((family, n)) => {
            let n = n.parse::<u32>().ok()?;
            (!family.is_empty()).then_some((family, Some(n)))
        }
        None => (!last.is_empty()).then_some((last, None)),
    }
}

/// Whether a trigger's target (a cluster ARN) is the stage's cluster (a name or an ARN).
fn in_cluster(target: &str, cluster: &str) -> bool {
    target == cluster
        || target
            .rsplit_once(":cluster/")
            .is_some_and(|(_, name)| name == cluster)
        || (!target.starts_with("arn:") && target.rsplit('/').next() == Some(cluster))
}

/// One trigger to move from the revision it names to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub trigger: TriggerId,
    pub from: String,
    pub to: String,
}

/// What a data-job stage does to the triggers it sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Pinned to another revision of one of the families: moved.
    pub moves: Vec<Move>,
    /// Already on the new revision (an earlier run of this action moved them).
    pub already: Vec<(TriggerId, String)>,
    /// Naming a family without a revision: they run its newest ACTIVE revision, the new
    /// one once it is registered, and are left as they are.
    pub unpinned: Vec<(TriggerId, String)>,
}

/// Which of `triggers` a stage that registered `revisions` (ARNs, one per family) moves,
/// in `cluster` if the stage names one: those pinned to another revision of one of the
/// families. Any other trigger (another family, another cluster, a name that is no task
/// definition) is not the stage's, and is not in the plan.
pub fn plan(triggers: &[Trigger], revisions: &[String], cluster: Option<&str>) -> Plan {
    let mut out = Plan::default();
    let mut sorted: Vec<&Trigger> = triggers.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for t in sorted {
        if cluster.is_some_and(|c| !in_cluster(&t.cluster, c)) {
            continue;
        }
        let Some((family, pinned)) = task_definition_of(&t.task_definition) else {
            tracing::warn!(trigger = %t.id, task_definition = %t.task_definition, "an ECS trigger naming no task-definition family or revision; left as it is");
            continue;
        };
        let Some(new) = revisions
            .iter()
            .find(|r| task_definition_of(r).is_some_and(|(f, _)| f == family))
        else {
            continue;
        };
        match pinned {
            None => out.unpinned.push((t.id.clone(), t.task_definition.clone())),
            Some(n) if task_definition_of(new).and_then(|(_, r)| r) == Some(n) => {
                out.already.push((t.id.clone(), new.clone()));
            }
            Some(_) => out.moves.push(Move {
                trigger: t.id.clone(),
                from: t.task_definition.clone(),
                to: new.clone(),
            }),
        }
    }
    out
}

/// Reads and points triggers: Scheduler and EventBridge ([`AwsTriggers`]), or a world.
pub trait TriggerPort: Sync {
    /// Every trigger whose target runs an ECS task.
    fn ecs_triggers(&self) -> impl Future<Output = Result<Vec<Trigger>, DeployError>> + Send;

    /// Points `trigger` at `to`, all else unchanged, if it names `from` (read again first);
    /// one that already names `to` is left as it is; one that names neither is an error.
    fn point(
        &self,
        trigger: &TriggerId,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;
}

/// What a data-job stage did to its triggers, recorded in the release's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerMoves {
    pub moved: Vec<Move>,
    pub already: Vec<(TriggerId, String)>,
    pub unpinned: Vec<(TriggerId, String)>,
}

impl TriggerMoves {
    /// One line per trigger, for the stage's history.
    pub fn lines(&self) -> Vec<String> {
        let moved = self.moved.iter().map(|m| {
            format!(
                "{} moved from {} to {}",
                m.trigger,
                short(&m.from),
                short(&m.to)
            )
        });
        let already = self
            .already
            .iter()
            .map(|(t, to)| format!("{t} already on {}", short(to)));
        let unpinned = self.unpinned.iter().map(|(t, td)| {
            format!(
                "{t} left as it is: it names {} without a revision, so it runs the newest ACTIVE one",
                short(td)
            )
        });
        moved.chain(already).chain(unpinned).collect()
    }
}

/// `family:N` of a task-definition ARN (what a person reads in history).
pub fn short(task_definition: &str) -> &str {
    task_definition
        .rsplit('/')
        .next()
        .unwrap_or(task_definition)
}

/// Moves every trigger of the plan, in order; when one fails, puts back those moved before
/// it (newest first) and answers an error that names it, what was put back, anything that
/// could not be, and the fix.
pub async fn move_triggers<P: TriggerPort>(
    port: &P,
    plan: Plan,
) -> Result<TriggerMoves, DeployError> {
    let mut moved: Vec<Move> = Vec::new();
    for m in plan.moves {
        if let Err(e) = port.point(&m.trigger, &m.from, &m.to).await {
            // AWS may have applied the failed move and lost its answer: it is put back too
            // (pointing it from the new revision is nothing when it still names the old).
            moved.push(m.clone());
            let put_back = compensate(port, &moved).await;
            return Err(refusal(&m, &e, &put_back));
        }
        moved.push(m);
    }
    Ok(TriggerMoves {
        moved,
        already: plan.already,
        unpinned: plan.unpinned,
    })
}

/// Puts `moved` back, newest first: for each, the error if it could not be.
pub async fn compensate<P: TriggerPort>(
    port: &P,
    moved: &[Move],
) -> Vec<(Move, Option<DeployError>)> {
    let mut out = Vec::new();
    for m in moved.iter().rev() {
        let result = port.point(&m.trigger, &m.to, &m.from).await;
        out.push((m.clone(), result.err()));
    }
    out
}

/// A data-job stage after its families' revisions were registered (`registered`, and the
/// error of one that could not be, if any): the triggers pinned to a revision of one of
/// them (in `cluster`, if named) moved to it, all or none. On any failure the moves are
/// put back and the registered revisions deregistered through `deregister` (but for one a
/// trigger still names: a trigger cannot run an INACTIVE revision), so that a trigger naming
/// its family unpinned runs what it ran before; the error says so. A restore's revisions
/// (`restore`: the last known good's own, found again, not new) are never deregistered:
/// another run of the same restore may be pointing triggers at them.
pub async fn settle<P, D, F>(
    port: &P,
    registered: Vec<String>,
    failed: Option<DeployError>,
    cluster: Option<&str>,
    restore: bool,
    deregister: D,
) -> Result<(Vec<String>, TriggerMoves), DeployError>
where
    P: TriggerPort,
    D: Fn(String) -> F,
    F: Future<Output = Result<(), DeployError>>,
{
    let moved = match failed {
        Some(e) => Err(e),
        None => match port.ecs_triggers().await {
            Ok(triggers) => move_triggers(port, plan(&triggers, &registered, cluster)).await,
            Err(e) => Err(e),
        },
    };
    match moved {
        Ok(moves) => Ok((registered, moves)),
        Err(e) if restore => Err(e),
        Err(e) => Err(withdraw(port, &registered, e, deregister).await),
    }
}

/// Deregisters `revisions` after `e` stopped the stage, but for one a trigger still names:
/// the error, saying what was done.
async fn withdraw<P, D, F>(
    port: &P,
    revisions: &[String],
    e: DeployError,
    deregister: D,
) -> DeployError
where
    P: TriggerPort,
    D: Fn(String) -> F,
    F: Future<Output = Result<(), DeployError>>,
{
    if revisions.is_empty() {
        return e;
    }
    let named: Vec<String> = match port.ecs_triggers().await {
        Ok(triggers) => triggers.into_iter().map(|t| t.task_definition).collect(),
        Err(listing) => {
            return DeployError {
                message: format!(
                    "{}; the new revisions {} were kept (the triggers could not be listed again: {})",
                    e.message,
                    names(revisions),
                    listing.message
                ),
                ..e
            };
        }
    };
    let (mut withdrawn, mut kept) = (Vec::new(), Vec::new());
    for arn in revisions {
        if named.contains(arn) {
            kept.push(arn.clone());
        } else if deregister(arn.clone()).await.is_ok() {
            withdrawn.push(arn.clone());
        } else {
            kept.push(arn.clone());
        }
    }
    let mut message = e.message;
    if !withdrawn.is_empty() {
        message.push_str(&format!(
            "; deregistered the new revisions {} (a trigger naming its family unpinned runs the one before)",
            names(&withdrawn)
        ));
    }
    if !kept.is_empty() {
        message.push_str(&format!(
            "; kept {} (a trigger names it, or ECS refused)",
            names(&kept)
        ));
    }
    DeployError { message, ..e }
}

fn names(revisions: &[String]) -> String {
    revisions
        .iter()
        .map(|r| short(r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error of a move that failed, after what it moved before was put back.
fn refusal(
    failed: &Move,
    e: &DeployError,
    put_back: &[(Move, Option<DeployError>)],
) -> DeployError {
    let mut message = format!(
        "{} was not moved from {} to {}: {}",
        failed.trigger,
        short(&failed.from),
        short(&failed.to),
        e.message
    );
    let back: Vec<String> = put_back
        .iter()
        .filter(|(m, err)| err.is_none() && m != failed)
        .map(|(m, _)| format!("{} (to {})", m.trigger, short(&m.from)))
        .collect();
    if !back.is_empty() {
        message.push_str(&format!("; put back: {}", back.join(", ")));
    }
    for (m, err) in put_back {
        if let Some(err) = err {
            message.push_str(&format!(
                "; {} could NOT be put back ({}): point its ECS target at {} by hand",
                m.trigger, err.message, m.from
            ));
        }
    }
    if e.retryable {
        message.push_str(
            "; AWS did not answer in time past the SDK's retries: `shiplane retry` tries again",
        );
    } else {
        message.push_str(&format!(
            "; fix what refused {} (the deploy role needs scheduler:UpdateSchedule, events:PutTargets and iam:PassRole on the trigger's role: the stack's JobTriggerRoleArns), then `shiplane retry`",
            failed.trigger
        ));
    }
    DeployError {
        message,
        retryable: e.retryable,
    }
}
