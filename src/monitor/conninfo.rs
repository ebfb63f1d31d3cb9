//! Rewriting a libpq connection string (`key=value key='quoted value'`) to another host.

/// `conninfo` with its host and port replaced (added when absent); other keys kept as written.
pub fn with_host_port(conninfo: &str, host: &str, port: &str) -> String {
    let mut out: Vec<(String, String)> = parse(conninfo)
        .into_iter()
        .filter(|(k, _)| k != "host" && k != "port" && k != "hostaddr")
        .collect();
    out.push(("host".into(), host.into()));
    out.push(("port".into(), port.into()));
    out.iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\']) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Key/value pairs of a connection string; malformed tails are dropped.
fn parse(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            return pairs;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return pairs;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') | None => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::with_host_port;

    #[test]
    fn host_and_port_are_replaced_and_the_rest_kept() {
        let c = "user=replicator password='it''s' channel_binding=prefer host=127.0.0.1 port=5432 application_name=pg2";
        let c = c.replace("''", "\\'");
        assert_eq!(
            with_host_port(&c, "127.0.0.1", "6000"),
            "user=replicator password='it\\'s' channel_binding=prefer application_name=pg2 host=127.0.0.1 port=6000"
        );
        assert_eq!(with_host_port("", "h", "1"), "host=h port=1");
        assert_eq!(
            with_host_port("host = /tmp/x  port= 5 user=a", "h", "2"),
            "user=a host=h port=2"
        );
    }
}
