//! Logs captured in Lambda's text format, as a reader of CloudWatch Logs sees them, with
//! how many records were written: a record that takes more than one line (a line break
//! from an event logged unescaped) can forge the lines after it.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// What a run logged.
pub struct Captured {
    pub text: String,
    /// How many records (tracing events) were written.
    pub records: usize,
}

impl Captured {
    /// Panics naming the record when the text has more lines than records.
    pub fn assert_one_line_per_record(&self, what: &str) {
        let lines = self.text.lines().count();
        assert_eq!(
            lines, self.records,
            "{what}: {} records took {lines} lines:\n{}",
            self.records, self.text
        );
    }
}

#[derive(Clone, Default)]
struct Buffer {
    text: Arc<Mutex<Vec<u8>>>,
    records: Arc<Mutex<usize>>,
}

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.text
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `run` on this thread with every record it logs (at debug and above) captured in
/// the text format (the fmt subscriber asks its writer once per record).
pub fn captured<T>(run: impl FnOnce() -> T) -> (T, Captured) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || {
            *writer.records.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            writer.clone()
        })
        .finish();
    let out = tracing::subscriber::with_default(subscriber, || {
        // Another test's thread may have registered a callsite while no subscriber wanted
        // it; ask every callsite again, now that this one does.
        tracing::callsite::rebuild_interest_cache();
        run()
    });
    let text = String::from_utf8_lossy(&buffer.text.lock().unwrap_or_else(|p| p.into_inner()))
        .into_owned();
    let records = *buffer.records.lock().unwrap_or_else(|p| p.into_inner());
    (out, Captured { text, records })
}

/// [`captured`] for an async `run`, on a runtime of this thread's own.
pub fn captured_async<T>(run: impl std::future::Future<Output = T>) -> (T, Captured) {
    captured(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
            .block_on(run)
    })
}
