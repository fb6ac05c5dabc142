//! Writing to stdout and stderr without `println!`'s panic when the reader has gone
//! (`shiplane --json status | head`): like ripgrep, a closed pipe ends the command quietly,
//! after whatever it changed has been recorded.

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};

/// Writes to stdout; a closed pipe exits quietly, any other write error with status 1.
pub fn stdout(args: Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        gone(e);
    }
}

/// Writes to stderr; a closed stderr is ignored (there is nobody left to tell).
pub fn stderr(args: Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

fn gone(e: std::io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    stderr(format_args!("error: cannot write the output: {e}\n"));
    std::process::exit(1);
}

/// `println!` to stdout, quiet on a closed pipe.
macro_rules! outln {
    () => { $crate::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` to stdout, quiet on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};
