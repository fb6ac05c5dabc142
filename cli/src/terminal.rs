//! The terminal's width, for tables that wrap instead of running off the screen.

/// The width of the terminal on stdout: `$COLUMNS` when set (what shells and `less` agree
/// on), else what the terminal says (TIOCGWINSZ); None when neither knows.
pub fn width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w > 0)
        .or_else(asked)
}

#[cfg(unix)]
fn asked() -> Option<u16> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
    // writable `winsize` for the whole call; stdout's descriptor is only read.
    let answered = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (answered == 0 && size.ws_col > 0).then_some(size.ws_col)
}

#[cfg(not(unix))]
fn asked() -> Option<u16> {
    None
}
