//! `application/x-www-form-urlencoded`, both ways: what an HTML form posts, and the
//! message a redirect carries back in its query string.

use std::collections::BTreeMap;

/// The fields of a form body or query string (the last value of a repeated name wins).
pub fn parse(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `s` for a query string: unreserved characters as they are, everything else %XX.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_a_browser_posts() {
        let f = parse("token=ab12&reason=bad+canary%2C+5xx+%E2%86%91&release=01K&empty=&bare");
        assert_eq!(f["token"], "ab12");
        assert_eq!(f["reason"], "bad canary, 5xx ↑");
        assert_eq!(f["empty"], "");
        assert_eq!(f["bare"], "");
        assert_eq!(parse("%zz=%4")["%zz"], "%4", "bad escapes kept as typed");
        let text = "refused: cannot approve v1 (01K) in prod & more → ok";
        assert_eq!(parse(&format!("said={}", encode(text)))["said"], text);
    }
}
