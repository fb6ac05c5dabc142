//! The clients the engine drives, owned ([`Deps`]) or borrowed ([`Engine`]).

use crate::aws::{Deployer, Notifier, Timer};
use crate::store::ReleaseStore;

/// The clients a function builds once per cold start and every invocation reuses.
pub struct Deps<S, D, N, T> {
    pub store: S,
    pub deployer: D,
    pub notifier: N,
    pub timer: T,
}

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Deps<S, D, N, T> {
    /// An engine borrowing these clients.
    pub fn engine(&self) -> Engine<'_, S, D, N, T> {
        Engine {
            store: &self.store,
            deployer: &self.deployer,
            notifier: &self.notifier,
            timer: &self.timer,
        }
    }
}

/// The engine over a store, a deployer, a notifier and a bake timer (real or fake).
pub struct Engine<'a, S, D, N, T> {
    pub store: &'a S,
    pub deployer: &'a D,
    pub notifier: &'a N,
    pub timer: &'a T,
}

impl<'a, S, D, N, T> Engine<'a, S, D, N, T> {
    /// The engine over these four, every engine not borrowed from [`Deps`] built alike.
    pub fn new(store: &'a S, deployer: &'a D, notifier: &'a N, timer: &'a T) -> Self {
        Engine {
            store,
            deployer,
            notifier,
            timer,
        }
    }
}
