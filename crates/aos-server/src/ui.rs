//! `GET /ui/…` (`interfaces.md` §1): the `aos-frontend` skill's web assets,
//! served only while that skill is installed and enabled — delete the skill
//! and the UI is gone, nothing else. The assets carry no data: the page logs
//! in with the operator token and calls the API like any other client.
//!
//! Paths are resolved before they are trusted: no hidden or `..` component,
//! and the real path (symlinks followed) must stay inside the skill's `web/`.

use aos_kernel::Kernel;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::path::PathBuf;

/// The skill whose `web/` is the UI.
pub const SKILL: &str = "aos-frontend";

/// An asset larger than this is refused (the UI's own are a few KiB).
const MAX_ASSET_BYTES: u64 = 8 * 1024 * 1024;

/// Scripts, styles, images and connections from the daemon only; nothing
/// inline, no frames.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// `/ui` → `/ui/` (the assets' relative links need the slash).
pub(crate) async fn redirect() -> Redirect {
    Redirect::permanent("/ui/")
}

/// The asset at `rel` under the skill's `web/` (`""` is `index.html`).
pub(crate) async fn serve(kernel: &Kernel, rel: &str) -> Response {
    let root = match kernel.web_assets(SKILL).await {
        Ok(root) => root,
        Err(why) => return not_found(&format!("no web UI here: {why}")),
    };
    let Some(rel) = clean(rel) else {
        return not_found(&format!("no asset {rel:?}"));
    };
    let real = match tokio::fs::canonicalize(root.join(&rel)).await {
        Ok(p) if p.starts_with(&root) => p,
        _ => return not_found(&format!("no asset {:?}", rel.display())),
    };
    match tokio::fs::metadata(&real).await {
        Ok(m) if m.is_file() && m.len() <= MAX_ASSET_BYTES => {}
        Ok(m) if m.is_file() => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "asset larger than 8 MiB".into(),
            );
        }
        _ => return not_found(&format!("no asset {:?}", rel.display())),
    }
    match tokio::fs::read(&real).await {
        Ok(bytes) => {
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, content_type(&real));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            secure(h);
            resp
        }
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the asset: {e}"),
        ),
    }
}

/// The relative path if every component is a plain name (not empty, not
/// `.`/`..`, not hidden, no backslash or NUL); `index.html` for the root.
fn clean(rel: &str) -> Option<PathBuf> {
    if rel.is_empty() {
        return Some(PathBuf::from("index.html"));
    }
    let mut out = PathBuf::new();
    for c in rel.split('/') {
        if c.is_empty() || c.starts_with('.') || c.contains(['\\', '\0']) {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

fn content_type(path: &std::path::Path) -> HeaderValue {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    HeaderValue::from_static(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    })
}

fn secure(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn not_found(why: &str) -> Response {
    plain(StatusCode::NOT_FOUND, why.to_string())
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut resp = (status, text).into_response();
    secure(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::clean;
    use std::path::PathBuf;

    #[test]
    fn only_plain_names_are_asset_paths() {
        assert_eq!(clean(""), Some(PathBuf::from("index.html")));
        assert_eq!(clean("js/app.js"), Some(PathBuf::from("js/app.js")));
        for bad in [
            "../x",
            "a/../../x",
            "./x",
            ".hidden",
            "a//b",
            "a/",
            "a\\..\\b",
            "a\0b",
            "/etc/passwd",
        ] {
            assert_eq!(clean(bad), None, "{bad:?}");
        }
    }
}
