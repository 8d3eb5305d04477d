//! The WebSocket Origin check (DESIGN.md §6). Browsers send cookies with a cross-site WebSocket
//! handshake and the same-origin policy does not apply to WebSockets, so without this check any web
//! page a logged-in officer visits could read the live feed (cross-site WebSocket hijacking).
//! Pure: the caller passes the headers.

/// Whether `s` is an origin as browsers send it: `http` or `https`, `://`, a host, an optional
/// numeric port, nothing else (no user info, path, query or fragment).
pub fn is_origin(s: &str) -> bool {
    let Some((scheme, authority)) = s.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "http" | "https") {
        return false;
    }
    let (host, port) = split_port(authority);
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c) || (ipv6 && "[]:".contains(c)))
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether a handshake with these `Origin` and `Host` headers may open a socket: the origin is
/// the server's own (its authority equals `Host`) or one of `allowed`. A missing, `null` or
/// malformed origin never may.
pub fn allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin.filter(|o| is_origin(o)) else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    host.is_some_and(|h| normalise(scheme, authority) == normalise(scheme, h))
}

/// `host` and `port` of an authority; IPv6 literals keep their brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    }
}

/// An authority in lower case without the scheme's default port, so `Host: a.cn:443` matches
/// `https://a.cn`.
fn normalise(scheme: &str, authority: &str) -> String {
    let default = if scheme == "https" { "443" } else { "80" };
    let authority = authority.trim().to_ascii_lowercase();
    match split_port(&authority) {
        (host, Some(port)) if port == default => host.to_owned(),
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_origin_is_allowed_whatever_the_scheme_or_case() {
        let host = Some("127.0.0.1:8080");
        assert!(allowed(Some("http://127.0.0.1:8080"), host, &[]));
        assert!(allowed(Some("https://127.0.0.1:8080"), host, &[]));
        assert!(allowed(
            Some("https://Console.Example.cn"),
            Some("console.example.cn:443"),
            &[]
        ));
        assert!(allowed(Some("http://[::1]:8080"), Some("[::1]:8080"), &[]));
    }

    #[test]
    fn another_site_a_missing_or_null_origin_and_a_different_port_are_refused() {
        let host = Some("127.0.0.1:8080");
        assert!(!allowed(Some("http://evil.example"), host, &[]));
        assert!(!allowed(Some("http://127.0.0.1:9090"), host, &[]));
        assert!(!allowed(None, host, &[]));
        assert!(!allowed(Some("null"), host, &[]));
        assert!(!allowed(Some("http://127.0.0.1:8080"), None, &[]));
        // a look-alike that only starts with the host
        assert!(!allowed(
            Some("http://127.0.0.1:8080.evil.example"),
            host,
            &[]
        ));
    }

    #[test]
    fn configured_origins_are_allowed_exactly() {
        let extra = vec!["https://wall.example.cn".to_owned()];
        assert!(allowed(
            Some("https://wall.example.cn"),
            Some("dispatch:8080"),
            &extra
        ));
        assert!(!allowed(
            Some("http://wall.example.cn"),
            Some("dispatch:8080"),
            &extra
        ));
        assert!(!allowed(
            Some("https://wall.example.cn.evil"),
            Some("dispatch:8080"),
            &extra
        ));
    }

    #[test]
    fn only_scheme_host_and_port_make_an_origin() {
        assert!(is_origin("https://a.example"));
        assert!(is_origin("http://a.example:8080"));
        assert!(!is_origin("ftp://a.example"));
        assert!(!is_origin("https://a.example/"));
        assert!(!is_origin("https://user@a.example"));
        assert!(!is_origin("https://a.example:"));
        assert!(!is_origin("https://"));
        assert!(!is_origin("a.example"));
    }
}
