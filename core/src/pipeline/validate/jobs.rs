//! Data-job stages that update the same task-definition family must tell their triggers
//! apart by cluster: each moves the triggers pinned to a revision of its families, so two
//! that could see the same trigger would move it back and forth (dev's release moving
//! prod's nightly job onto dev's image).

use std::collections::BTreeMap;

use super::Problems;
use crate::pipeline::{Service, Target};

/// A data-job stage: its service, environment and cluster.
type JobStage<'a> = (&'a str, &'a str, Option<&'a str>);

/// Every pair of data-job stages sharing a family names two different clusters.
pub(super) fn shared_families(services: &BTreeMap<String, Service>, p: &mut Problems) {
    // family → the stages seen so far that update it.
    let mut seen: BTreeMap<&str, Vec<JobStage<'_>>> = BTreeMap::new();
    for (name, service) in services {
        for stage in &service.stages {
            let Target::Task { families, cluster } = &stage.target else {
                continue;
            };
            let env = stage.environment.as_str();
            for family in families {
                let earlier = seen.entry(family).or_default();
                let clash = earlier
                    .iter()
                    .find(|(_, _, other)| overlap(cluster.as_deref(), *other));
                if let Some((other_service, other_env, _)) = clash {
                    p.add(
                        format!("services.{name}.environments.{env}.cluster"),
                        format!(
                            "{family} is also updated by services.{other_service}.environments.{other_env}, and both could move the same triggers; give each environment its own cluster (here or in [defaults.{env}]) so each moves only the triggers that run there"
                        ),
                    );
                }
                earlier.push((name, env, cluster.as_deref()));
            }
        }
    }
}

/// Whether two stages' triggers can be the same: no cluster means any cluster.
fn overlap(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}
