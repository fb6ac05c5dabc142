use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::*;

const TD: &str = "arn:aws:ecs:eu-west-1:1:task-definition";
const CLUSTER: &str = "arn:aws:ecs:eu-west-1:1:cluster";

fn td(name: &str) -> String {
    format!("{TD}/{name}")
}

fn schedule(name: &str, cluster: &str, task_definition: &str) -> Trigger {
    Trigger {
        id: TriggerId::Schedule {
            group: "default".into(),
            name: name.into(),
        },
        cluster: format!("{CLUSTER}/{cluster}"),
        task_definition: td(task_definition),
    }
}

fn rule(name: &str, cluster: &str, task_definition: &str) -> Trigger {
    Trigger {
        id: TriggerId::RuleTarget {
            bus: "default".into(),
            rule: name.into(),
            target: "job".into(),
        },
        cluster: format!("{CLUSTER}/{cluster}"),
        task_definition: td(task_definition),
    }
}

#[test]
fn task_definitions_are_read_pinned_or_not_and_anything_else_is_not_one() {
    for (name, read) in [
        (td("etl:3"), Some(("etl", Some(3)))),
        (td("etl"), Some(("etl", None))),
        ("etl:7".to_string(), Some(("etl", Some(7)))),
        (td("etl:latest"), None),
        ("arn:aws:lambda:eu-west-1:1:function:etl".to_string(), None),
        (td(":3"), None),
        (String::new(), None),
    ] {
        assert_eq!(task_definition_of(&name), read, "{name}");
    }
}

#[test]
fn only_triggers_pinned_to_another_revision_of_a_family_in_the_cluster_move() {
    let triggers = [
        schedule("nightly", "jobs-dev", "etl:3"),
        rule("hourly", "jobs-dev", "etl:2"),
        schedule("done", "jobs-dev", "etl:5"),
        schedule("follows", "jobs-dev", "etl"),
        schedule("prod", "jobs-prod", "etl:3"),
        schedule("other", "jobs-dev", "etl-sidecar:3"),
        schedule("backfill", "jobs-dev", "backfill:9"),
    ];
    let revisions = [td("etl:5"), td("backfill:10")];
    let p = plan(&triggers, &revisions, Some("jobs-dev"));
    let moved: Vec<String> = p
        .moves
        .iter()
        .map(|m| format!("{} {}→{}", m.trigger, short(&m.from), short(&m.to)))
        .collect();
    assert_eq!(
        moved,
        [
            "schedule default/backfill backfill:9→backfill:10",
            "schedule default/nightly etl:3→etl:5",
            "rule default/hourly target job etl:2→etl:5",
        ]
    );
    assert_eq!(p.already, [(schedule("done", "", "").id, td("etl:5"))]);
    assert_eq!(p.unpinned, [(schedule("follows", "", "").id, td("etl"))]);

    let anywhere = plan(&triggers, &revisions, None);
    assert_eq!(anywhere.moves.len(), 4, "no cluster: prod's schedule too");
    let by_arn = plan(&triggers, &revisions, Some(&format!("{CLUSTER}/jobs-prod")));
    assert_eq!(by_arn.moves.len(), 1, "the cluster named by its ARN");
}

/// Triggers in memory; pointing one to a revision in `refuse` (`"<trigger> <family:N>"`)
/// fails, in `lose` is done and then fails (the answer lost).
#[derive(Default)]
struct Fake {
    at: Mutex<BTreeMap<TriggerId, String>>,
    refuse: BTreeSet<String>,
    lose: BTreeSet<String>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn holding(triggers: &[Trigger], refuse: &[&str]) -> Fake {
        Fake {
            at: Mutex::new(
                triggers
                    .iter()
                    .map(|t| (t.id.clone(), t.task_definition.clone()))
                    .collect(),
            ),
            refuse: refuse.iter().map(ToString::to_string).collect(),
            lose: BTreeSet::new(),
            calls: Mutex::default(),
        }
    }
}

impl Fake {
    /// Asserts every trigger names what it named at first.
    fn holds(&self, triggers: &[Trigger]) {
        for t in triggers {
            assert_eq!(
                self.at.lock().unwrap()[&t.id],
                t.task_definition,
                "{}",
                t.id
            );
        }
    }
}

impl TriggerPort for Fake {
    async fn ecs_triggers(&self) -> Result<Vec<Trigger>, DeployError> {
        unreachable!()
    }

    async fn point(&self, trigger: &TriggerId, from: &str, to: &str) -> Result<(), DeployError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{trigger} {}→{}", short(from), short(to)));
        let key = format!("{trigger} {}", short(to));
        if self.refuse.contains(&key) {
            return Err(DeployError::permanent("AccessDenied"));
        }
        // As the real port: only a trigger naming `from` is changed.
        let mut at = self.at.lock().unwrap();
        if at.get(trigger).map(String::as_str) == Some(from) {
            at.insert(trigger.clone(), to.to_string());
        }
        if self.lose.contains(&key) {
            return Err(DeployError::permanent("timed out"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_refused_move_puts_back_what_moved_before_it_newest_first() {
    let triggers = [
        schedule("a", "c", "etl:3"),
        schedule("b", "c", "etl:3"),
        schedule("c", "c", "etl:4"),
    ];
    let p = plan(&triggers, &[td("etl:5")], None);
    let fake = Fake::holding(&triggers, &["schedule default/c etl:5"]);
    let err = move_triggers(&fake, p).await.unwrap_err();
    assert_eq!(
        *fake.calls.lock().unwrap(),
        [
            "schedule default/a etl:3→etl:5",
            "schedule default/b etl:3→etl:5",
            "schedule default/c etl:4→etl:5",
            "schedule default/c etl:5→etl:4",
            "schedule default/b etl:5→etl:3",
            "schedule default/a etl:5→etl:3",
        ]
    );
    fake.holds(&triggers);
    assert!(
        err.message.starts_with(
            "schedule default/c was not moved from etl:4 to etl:5: AccessDenied; put back: schedule default/b (to etl:3), schedule default/a (to etl:3); fix what refused schedule default/c"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_trigger_that_cannot_be_put_back_is_named_with_the_revision_to_point_it_at() {
    let triggers = [schedule("a", "c", "etl:3"), schedule("b", "c", "etl:3")];
    let p = plan(&triggers, &[td("etl:5")], None);
    let fake = Fake::holding(
        &triggers,
        &["schedule default/b etl:5", "schedule default/a etl:3"],
    );
    let err = move_triggers(&fake, p).await.unwrap_err();
    assert!(!err.message.contains("put back:"), "{}", err.message);
    assert!(
        err.message.contains(&format!(
            "schedule default/a could NOT be put back (AccessDenied): point its ECS target at {} by hand",
            td("etl:3")
        )),
        "{}",
        err.message
    );
}

#[test]
fn what_moved_reads_one_line_per_trigger() {
    let moves = TriggerMoves {
        moved: vec![Move {
            trigger: schedule("a", "c", "").id,
            from: td("etl:3"),
            to: td("etl:5"),
        }],
        already: vec![(rule("r", "c", "").id, td("etl:5"))],
        unpinned: vec![(schedule("u", "c", "").id, td("etl"))],
    };
    assert_eq!(
        moves.lines(),
        [
            "schedule default/a moved from etl:3 to etl:5",
            "rule default/r target job already on etl:5",
            "schedule default/u left as it is: it names etl without a revision, so it runs the newest ACTIVE one",
        ]
    );
}

#[tokio::test]
async fn a_move_whose_answer_was_lost_is_put_back_too() {
    let triggers = [schedule("a", "c", "etl:3"), schedule("b", "c", "etl:3")];
    let p = plan(&triggers, &[td("etl:5")], None);
    let mut fake = Fake::holding(&triggers, &[]);
    fake.lose.insert("schedule default/b etl:5".into());
    let err = move_triggers(&fake, p).await.unwrap_err();
    assert!(
        err.message.starts_with(
            "schedule default/b was not moved from etl:3 to etl:5: timed out; put back: schedule default/a (to etl:3)"
        ),
        "{}",
        err.message
    );
    fake.holds(&triggers);
}

#[tokio::test]
async fn a_failed_restore_never_deregisters_the_revisions_it_restores() {
    let fake = Fake::holding(&[], &[]);
    let deregistered = Mutex::new(Vec::<String>::new());
    let deregister = |arn: String| {
        deregistered.lock().unwrap().push(arn);
        async { Ok(()) }
    };
    let failed = Some(DeployError::permanent("throttled"));
    let err = settle(&fake, vec![td("etl:5")], failed, None, true, deregister)
        .await
        .unwrap_err();
    assert_eq!(err.message, "throttled");
    assert!(
        deregistered.lock().unwrap().is_empty(),
        "the last known good's own revisions stay"
    );
}
