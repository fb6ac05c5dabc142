//! Logs captured in Lambda's text format, as a reader of CloudWatch Logs sees them, with
//! how many records were written: a record that takes more than one line (a line break
//! from an event logged unescaped) can forge the lines after it.
//!
//! One subscriber serves the whole test process (the global default, set once), writing
//! each record to the capture of the thread that logs it, if that thread has one. A
//! subscriber per capture (`with_default`) would make every capture re-register all
//! callsites, and two threads doing that at once can leave the global level filter off
//! for the one still capturing: its records vanish.

use std::cell::RefCell;
use std::io::Write;

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

#[derive(Default)]
struct Sink {
    text: Vec<u8>,
    records: usize,
}

thread_local! {
    /// This thread's capture, while [`captured`] runs.
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Writes to this thread's capture, or nowhere.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        SINK.with(|s| {
            if let Some(sink) = s.borrow_mut().as_mut() {
                sink.text.extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's subscriber: text format without colours, debug and above; it asks for a
/// writer once per record, which counts it.
fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| {
                SINK.with(|s| {
                    if let Some(sink) = s.borrow_mut().as_mut() {
                        sink.records += 1;
                    }
                });
                ThreadWriter
            })
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in a test process that captures logs");
    });
}

/// Runs `run` with every record this thread logs meanwhile captured.
pub fn captured<T>(run: impl FnOnce() -> T) -> (T, Captured) {
    install();
    SINK.with(|s| *s.borrow_mut() = Some(Sink::default()));
    let out = run();
    let sink = SINK.with(|s| s.borrow_mut().take()).unwrap_or_default();
    let text = String::from_utf8_lossy(&sink.text).into_owned();
    (
        out,
        Captured {
            text,
            records: sink.records,
        },
    )
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
