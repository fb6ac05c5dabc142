//! Prints the microseconds aws-lc takes to fill its first 32 random bytes in this process:
//! the draw that seeds its generator, which the first TLS handshake after a cold start
//! waits for. `make bench` runs it built with and without CPU jitter entropy.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

fn main() {
    let mut bytes = [0u8; 32];
    let started = std::time::Instant::now();
    if let Err(e) = SystemRandom::new().fill(&mut bytes) {
        eprintln!("entropy-probe: aws-lc could not produce random bytes: {e}");
        std::process::exit(1);
    }
    println!("{:.1}", started.elapsed().as_secs_f64() * 1e6);
}
