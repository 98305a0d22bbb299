//! A real browser for the UI tests: Debian's headless Chromium driven over
//! the W3C WebDriver protocol by chromedriver (both installed by `.ci/run`),
//! with a small client of our own on `ureq`.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session, both ended on drop.
pub struct Browser {
    driver: Child,
    base: String,
    _profile: tempfile::TempDir,
}

/// A found element.
pub struct Element<'a> {
    b: &'a Browser,
    id: String,
}

fn bin(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/lib/chromium"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: `apt-get install chromium chromium-driver` (.ci/run does)");
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium window of
    /// 1400×900.
    pub fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let driver = Command::new(bin("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{driver_url}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile");
        // As root in a container, without the network the machine lacks.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": bin("chromium"), "args": args},
        }}});
        let created: Value = ureq::post(&format!("{driver_url}/session"))
            .send_json(caps)
            .unwrap_or_else(|e| panic!("cannot start chromium: {}", describe(e)))
            .into_json()
            .expect("json");
        let id = created["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Browser {
            driver,
            base: format!("{driver_url}/session/{id}"),
            _profile: profile,
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let v: Value = resp
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {}", describe(e)))
            .into_json()
            .expect("json");
        v["value"].clone()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current address.
    pub fn url(&self) -> String {
        self.send("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.send(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The first element matching `css`, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.wait(&format!("an element {css}"), || self.try_find(css))
    }

    /// The first element matching `css` now, if any.
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let url = format!("{}/element", self.base);
        let resp = ureq::post(&url).send_json(json!({"using": "css selector", "value": css}));
        let v: Value = resp.ok()?.into_json().ok()?;
        let id = v["value"][ELEMENT].as_str()?.to_string();
        Some(Element { b: self, id })
    }

    /// Waits (10 s) until `f` answers; panics naming `what` otherwise.
    pub fn wait<T>(&self, what: &str, f: impl FnMut() -> Option<T>) -> T {
        self.wait_for(what, Duration::from_secs(10), f)
    }

    /// [`Browser::wait`] with its own timeout.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let shot = self.screenshot(&format!("timeout-{}", slug(what)));
                panic!(
                    "timed out waiting for {what} (screenshot {})",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The text of the page's body.
    pub fn text(&self) -> String {
        self.js("return document.body.innerText", json!([]))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the page shows `needle`.
    pub fn wait_text(&self, needle: &str) {
        self.wait(&format!("the text {needle:?}"), || {
            self.text().contains(needle).then_some(())
        });
    }

    /// Saves a PNG of the window as `target/ui-screenshots/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let b64 = self.send("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("png");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot");
        path
    }
}

impl Element<'_> {
    pub fn click(&self) {
        self.b.send(
            "POST",
            &format!("/element/{}/click", self.id),
            Some(json!({})),
        );
    }

    /// Types `text` into the element.
    pub fn type_text(&self, text: &str) {
        self.b.send(
            "POST",
            &format!("/element/{}/value", self.id),
            Some(json!({ "text": text })),
        );
    }

    pub fn text(&self) -> String {
        self.b
            .send("GET", &format!("/element/{}/text", self.id), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, r) => format!("{code}: {}", r.into_string().unwrap_or_default()),
        e => e.to_string(),
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect()
}
