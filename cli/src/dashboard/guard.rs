//! Who may talk to the dashboard. It listens on 127.0.0.1 and acts with the operator's AWS
//! credentials, so any web page the operator's browser opens could try to reach it: a page
//! on another site posting a form (cross-site request forgery), or a hostile name that
//! resolves to 127.0.0.1 (DNS rebinding). Every request must name this server as its Host;
//! every action must carry the token only this process's pages hold, and come from this
//! origin when the browser says where it comes from.

/// The Host and Origin this server answers to, and the token its pages embed in forms.
pub struct Guard {
    token: String,
    hosts: [String; 2],
}

/// Why a request was turned away (answered 403), in words for the person who sent it.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl Guard {
    /// A guard for the dashboard on `port`, with a fresh 256-bit token from the OS.
    pub fn new(port: u16) -> Result<Guard, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| format!("cannot draw a random token from the OS: {e}"))?;
        Ok(Guard::with_token(
            port,
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    fn with_token(port: u16, token: String) -> Guard {
        Guard {
            token,
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        }
    }

    /// The token pages embed in their forms.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Any request: its Host must be this server (a rebound name is not).
    pub fn check_host(&self, host: Option<&str>) -> Result<(), Refused> {
        match host {
            Some(h) if self.hosts.iter().any(|ours| ours == h) => Ok(()),
            Some(h) => Err(Refused(format!(
                "this dashboard answers only to http://{}/ (Host was {h:?}); open that address",
                self.hosts[0]
            ))),
            None => Err(Refused(
                "no Host header; open the address `shiplane dashboard` printed".into(),
            )),
        }
    }

    /// An action: the page's token, and this origin when the browser names one.
    pub fn check_action(&self, origin: Option<&str>, token: Option<&str>) -> Result<(), Refused> {
        if let Some(origin) = origin
            && !self.hosts.iter().any(|h| origin == format!("http://{h}"))
        {
            return Err(Refused(format!(
                "actions are accepted only from the dashboard's own page (origin was {origin:?})"
            )));
        }
        match token {
            Some(t) if same(t.as_bytes(), self.token.as_bytes()) => Ok(()),
            Some(_) => Err(Refused(
                "this page's token is not this dashboard's (it was restarted?): reload the page and try again".into(),
            )),
            None => Err(Refused(
                "an action needs the page's token: use the dashboard's buttons (or send the token field its page holds)".into(),
            )),
        }
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::with_token(3100, "secret".into())
    }

    #[test]
    fn only_this_servers_host_names_are_answered() {
        let g = guard();
        assert!(g.check_host(Some("127.0.0.1:3100")).is_ok());
        assert!(g.check_host(Some("localhost:3100")).is_ok());
        for bad in [
            Some("127.0.0.1:3101"),
            Some("evil.example:3100"),
            Some("localhost"),
            None,
        ] {
            assert!(g.check_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_action_needs_the_token_and_this_origin() {
        let g = guard();
        assert!(g.check_action(None, Some("secret")).is_ok());
        assert!(
            g.check_action(Some("http://127.0.0.1:3100"), Some("secret"))
                .is_ok()
        );
        assert!(
            g.check_action(Some("http://localhost:3100"), Some("secret"))
                .is_ok()
        );
        let no_token = g.check_action(Some("http://127.0.0.1:3100"), None);
        assert!(no_token.unwrap_err().0.contains("needs the page's token"));
        assert!(g.check_action(None, Some("secreT")).is_err());
        assert!(g.check_action(None, Some("")).is_err());
        let foreign = g.check_action(Some("https://evil.example"), Some("secret"));
        assert!(foreign.unwrap_err().0.contains("evil.example"));
        assert!(
            g.check_action(Some("null"), Some("secret")).is_err(),
            "a sandboxed or file page"
        );
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let (a, b) = (Guard::new(1).unwrap(), Guard::new(1).unwrap());
        assert_eq!(a.token().len(), 64);
        assert_ne!(a.token(), b.token());
    }
}
