//! Strict durations for the pipeline file: `90s`, `15m`, `1h30m`, `2d`, `800ms`.

use std::time::Duration;

/// Parses `<integer><unit>` groups (units `ms`, `s`, `m`, `h`, `d`), nothing else, so that
/// a typo never silently becomes a different bake time. The error is the fix hint.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = || match suggest(text) {
        Some(fix) => format!("\"{text}\" is not a duration; write \"{fix}\""),
        None => format!(
            "\"{text}\" is not a duration; write a number and a unit (ms, s, m, h, d), e.g. \"30m\" or \"1h30m\""
        ),
    };
    if text.is_empty() {
        return Err(hint());
    }
    let mut total: u64 = 0; // milliseconds
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(hint()),
        };
        let n: u64 = digits.parse().map_err(|_| hint())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(hint)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(hint());
    }
    Ok(Duration::from_millis(total))
}

/// Turns the common human spellings (`1 hour`, `30 minutes`, `45 sec`) into the strict form.
fn suggest(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut words = text.split_whitespace();
    while let Some(number) = words.next() {
        // Accept "1hour" as well as "1 hour".
        let split = number
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(number.len());
        let (n, glued) = number.split_at(split);
        if n.is_empty() {
            return None;
        }
        let word = if glued.is_empty() {
            words.next()?
        } else {
            glued
        };
        let unit = match word.trim_end_matches(',').to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 's',
            "m" | "min" | "mins" | "minute" | "minutes" => 'm',
            "h" | "hr" | "hrs" | "hour" | "hours" => 'h',
            "d" | "day" | "days" => 'd',
            _ => return None,
        };
        out.push_str(n);
        out.push(unit);
    }
    (!out.is_empty() && out != text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strict_forms() {
        for (text, secs) in [
            ("0s", 0),
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("2d", 172_800),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(
            parse_duration("1m30s250ms"),
            Ok(Duration::from_millis(90_250))
        );
    }

    #[test]
    fn rejects_with_a_fix() {
        assert_eq!(
            parse_duration("1 hour").unwrap_err(),
            "\"1 hour\" is not a duration; write \"1h\""
        );
        assert_eq!(
            parse_duration("30 minutes").unwrap_err(),
            "\"30 minutes\" is not a duration; write \"30m\""
        );
        assert_eq!(
            parse_duration("1hour 5 min").unwrap_err(),
            "\"1hour 5 min\" is not a duration; write \"1h5m\""
        );
        for bad in [
            "",
            "h",
            "10",
            "1.5h",
            "-1h",
            "1w",
            "soon",
            "99999999999999999999d",
            "5ms3",
            "3sm",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
    }
}
