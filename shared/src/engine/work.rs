//! A unit of the engine's work: one event in one lane, or an action to run, with what its
//! commit must also write.

use crate::release::{Action, Event, LaneEvent, Release, ReleaseId};
use crate::store::{Claim, DeploymentRef};

/// What a unit of work is about.
#[derive(Debug, Clone)]
pub(super) enum Subject {
    Release(ReleaseId, Event),
    Lane(LaneEvent),
    /// Nothing happened; finish what the lane owes.
    Recover,
}

/// One event in one lane, with what its commit must also write.
#[derive(Debug, Clone)]
pub(super) struct Work {
    pub service: String,
    pub environment: String,
    pub subject: Subject,
    pub new_release: Option<Release>,
    pub claim: Option<Claim>,
    pub deployments: Vec<DeploymentRef>,
}

impl Work {
    fn with(service: &str, environment: &str, subject: Subject) -> Work {
        Work {
            service: service.to_string(),
            environment: environment.to_string(),
            subject,
            new_release: None,
            claim: None,
            deployments: Vec::new(),
        }
    }

    pub fn event(service: &str, environment: &str, release: &ReleaseId, event: Event) -> Work {
        Self::with(
            service,
            environment,
            Subject::Release(release.clone(), event),
        )
    }

    pub fn lane(service: &str, environment: &str, event: LaneEvent) -> Work {
        Self::with(service, environment, Subject::Lane(event))
    }

    pub fn recover(service: &str, environment: &str) -> Work {
        Self::with(service, environment, Subject::Recover)
    }
}

pub(super) enum Job {
    Apply(Work),
    Execute(Action, Release),
}
