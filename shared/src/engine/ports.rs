//! The four ports the engine drives, named by one type parameter ([`Ports`]), owned
//! ([`Deps`]) or borrowed ([`Engine`]).

use crate::aws::{Deployer, Notifier, Timer};
use crate::store::ReleaseStore;

/// The four ports the engine drives, as one bundle: the engine's `impl` blocks and the
/// handlers say `P: Ports` once instead of four bounds, still statically dispatched. A
/// tuple of the four concrete types is one (the functions' `lambda::AwsPorts`, the tests'
/// `testing::FakePorts`).
pub trait Ports {
    type Store: ReleaseStore;
    type Deployer: Deployer;
    type Notifier: Notifier;
    type Timer: Timer;
}

impl<S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Ports for (S, D, N, T) {
    type Store = S;
    type Deployer = D;
    type Notifier = N;
    type Timer = T;
}

/// The clients a function builds once per cold start and every invocation reuses.
pub struct Deps<P: Ports> {
    pub store: P::Store,
    pub deployer: P::Deployer,
    pub notifier: P::Notifier,
    pub timer: P::Timer,
}

impl<P: Ports> Deps<P> {
    /// An engine borrowing these clients.
    pub fn engine(&self) -> Engine<'_, P> {
        Engine {
            store: &self.store,
            deployer: &self.deployer,
            notifier: &self.notifier,
            timer: &self.timer,
        }
    }
}

/// The engine over a store, a deployer, a notifier and a bake timer (real or fake).
pub struct Engine<'a, P: Ports> {
    pub store: &'a P::Store,
    pub deployer: &'a P::Deployer,
    pub notifier: &'a P::Notifier,
    pub timer: &'a P::Timer,
}

impl<'a, S: ReleaseStore, D: Deployer, N: Notifier, T: Timer> Engine<'a, (S, D, N, T)> {
    /// The engine over these four: a struct literal cannot infer the bundle from fields
    /// typed `P::Store`, …, so every engine not borrowed from [`Deps`] is built here.
    pub fn new(store: &'a S, deployer: &'a D, notifier: &'a N, timer: &'a T) -> Self {
        Engine {
            store,
            deployer,
            notifier,
            timer,
        }
    }
}
