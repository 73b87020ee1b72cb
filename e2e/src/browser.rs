//! A real browser for the web page tests: Debian's headless `chromium`, driven over WebDriver
//! by Debian's `chromium-driver` through the `fantoccini` client. No npm, no browser download.
//!
//! Besides what WebDriver itself offers (navigation, elements, keys, scripts), chromedriver
//! gives two extensions this uses: its log endpoint (`se/log`: the console, and the DevTools
//! network events as the `performance` log) and `goog/cdp/execute`, a DevTools command
//! (permissions, downloads, the viewport, full-page screenshots).

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MouseActions, PointerAction, TouchActions,
    MOUSE_BUTTON_LEFT,
};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

pub use fantoccini::key::Key;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const POLL: Duration = Duration::from_millis(100);

/// Debian's `chromium` and `chromium-driver`, installed when missing (`HOPSTER_UI_CHROMIUM`
/// and `HOPSTER_UI_CHROMEDRIVER` name other binaries).
pub fn ensure_installed() -> (String, String) {
    let chromium = std::env::var("HOPSTER_UI_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    let driver = std::env::var("HOPSTER_UI_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
    if !Path::new(&chromium).exists() || !Path::new(&driver).exists() {
        eprintln!("the web page tests need Debian's chromium and chromium-driver: installing");
        for args in [
            &["apt-get", "update", "-qq"][..],
            &[
                "apt-get",
                "install",
                "-y",
                "-qq",
                "chromium",
                "chromium-driver",
            ][..],
        ] {
            let status = crate::as_root(args)
                .status()
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(status.success(), "{args:?} failed (needs root or sudo -n)");
        }
    }
    for path in [&chromium, &driver] {
        assert!(Path::new(path).exists(), "{path} is missing");
    }
    (chromium, driver)
}

/// One chromedriver with one headless Chromium session, and what the page logged.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    profile: crate::TempDir,
    /// Where downloads land.
    pub downloads: PathBuf,
    /// Every URL the page requested, from the network events.
    pub requests: Vec<String>,
    /// `(url, status, headers)` of every response the page received.
    pub responses: Vec<(String, u16, Value)>,
}

/// One entry of chromedriver's `se/log`.
#[derive(Debug, Deserialize)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
}

/// A chromedriver extension command on the current session: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

impl Browser {
    /// Starts chromedriver on a free port (it prints the one it took) and opens a session of
    /// headless Chromium at 1280×900 that saves downloads without asking.
    pub async fn launch() -> anyhow::Result<Browser> {
        let (chromium, driver_path) = ensure_installed();
        let mut driver = tokio::process::Command::new(&driver_path)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {driver_path}"))?;
        let stdout = driver.stdout.take().context("chromedriver's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest
                        .trim_end_matches('.')
                        .trim()
                        .parse::<u16>()
                        .map_err(|e| {
                            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                        });
                }
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "chromedriver exited before it said its port",
            ))
        })
        .await
        .context("chromedriver did not start within 20 s")??;
        // Keep reading so chromedriver never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = crate::TempDir::new("hopster-ui-chromium");
        let downloads = profile.0.join("downloads");
        std::fs::create_dir_all(&downloads)?;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--mute-audio",
                    "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.0.join("profile").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
            "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            bail!("capabilities are an object");
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a WebDriver session")?;
        let browser = Browser {
            client,
            driver,
            profile,
            downloads,
            requests: Vec::new(),
            responses: Vec::new(),
        };
        browser
            .cdp(
                "Browser.setDownloadBehavior",
                json!({"behavior": "allow", "downloadPath": browser.downloads, "eventsEnabled": true}),
            )
            .await?;
        browser.viewport(1280, 900).await?;
        Ok(browser)
    }

    /// A DevTools protocol command, through chromedriver.
    pub async fn cdp(&self, command: &str, params: Value) -> anyhow::Result<Value> {
        self.client
            .issue_cmd(SessionPost {
                path: "goog/cdp/execute",
                body: json!({"cmd": command, "params": params}),
            })
            .await
            .with_context(|| format!("DevTools {command}"))
    }

    /// The log entries of `kind` (`browser`, `performance`) since the last call.
    pub async fn log(&self, kind: &str) -> anyhow::Result<Vec<LogEntry>> {
        let value = self
            .client
            .issue_cmd(SessionPost {
                path: "se/log",
                body: json!({"type": kind}),
            })
            .await
            .with_context(|| format!("reading the {kind} log"))?;
        Ok(serde_json::from_value(value)?)
    }

    /// Reads the network events into `requests` and `responses`.
    pub async fn read_network(&mut self) -> anyhow::Result<()> {
        #[derive(Deserialize)]
        struct Wrapped {
            message: Event,
        }
        #[derive(Deserialize)]
        struct Event {
            method: String,
            #[serde(default)]
            params: Value,
        }
        for entry in self.log("performance").await? {
            let Ok(Wrapped { message }) = serde_json::from_str::<Wrapped>(&entry.message) else {
                continue;
            };
            match message.method.as_str() {
                "Network.requestWillBeSent" => {
                    if let Some(url) = message.params["request"]["url"].as_str() {
                        self.requests.push(url.to_owned());
                    }
                }
                "Network.responseReceived" => {
                    let response = &message.params["response"];
                    if let (Some(url), Some(status)) =
                        (response["url"].as_str(), response["status"].as_u64())
                    {
                        self.responses.push((
                            url.to_owned(),
                            u16::try_from(status).unwrap_or_default(),
                            response["headers"].clone(),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The console's errors since the last call, split into those that are a failed load
    /// with one of the `allowed` statuses (the browser logs one for every 4xx answer) and
    /// the rest.
    pub async fn console_errors(
        &self,
        allowed: &[u16],
    ) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let (mut expected, mut errors) = (Vec::new(), Vec::new());
        for entry in self.log("browser").await? {
            if entry.level != "SEVERE" {
                continue;
            }
            let status = entry
                .message
                .split("the server responded with a status of ")
                .nth(1)
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse::<u16>().ok());
            if status.is_some_and(|s| allowed.contains(&s)) {
                expected.push(entry.message);
            } else {
                errors.push(entry.message);
            }
        }
        Ok((expected, errors))
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and decodes what it returns.
    pub async fn js<T: DeserializeOwned>(
        &self,
        script: &str,
        args: Vec<Value>,
    ) -> anyhow::Result<T> {
        let value = self
            .client
            .execute(script, args)
            .await
            .with_context(|| format!("running {script}"))?;
        serde_json::from_value(value.clone()).with_context(|| format!("{script} returned {value}"))
    }

    /// Runs an asynchronous `script`: it ends by calling `arguments[arguments.length - 1]`.
    pub async fn js_async<T: DeserializeOwned>(&self, script: &str) -> anyhow::Result<T> {
        let value = self
            .client
            .execute_async(script, Vec::new())
            .await
            .with_context(|| format!("running {script}"))?;
        serde_json::from_value(value.clone()).with_context(|| format!("{script} returned {value}"))
    }

    /// The `textContent` of the first element matching `css` (`None` when there is none).
    pub async fn text(&self, css: &str) -> anyhow::Result<Option<String>> {
        self.js(
            "const el = document.querySelector(arguments[0]); return el ? el.textContent : null;",
            vec![json!(css)],
        )
        .await
    }

    /// An attribute of the first element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> anyhow::Result<Option<String>> {
        self.js(
            "const el = document.querySelector(arguments[0]); return el ? el.getAttribute(arguments[1]) : null;",
            vec![json!(css), json!(name)],
        )
        .await
    }

    /// Whether an element matching `css` is shown (WebDriver's "displayed").
    pub async fn visible(&self, css: &str) -> anyhow::Result<bool> {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => Ok(el.is_displayed().await?),
            Err(e) if e.is_no_such_element() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| css.to_owned())?;
        el.click().await.with_context(|| format!("clicking {css}"))
    }

    /// Empties a field and types `text` into it, as a person would.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| css.to_owned())?;
        el.clear()
            .await
            .with_context(|| format!("clearing {css}"))?;
        if !text.is_empty() {
            el.send_keys(text)
                .await
                .with_context(|| format!("typing into {css}"))?;
        }
        Ok(())
    }

    /// The value of an input.
    pub async fn value(&self, css: &str) -> anyhow::Result<String> {
        self.js::<Option<String>>(
            "const el = document.querySelector(arguments[0]); return el ? el.value : null;",
            vec![json!(css)],
        )
        .await?
        .ok_or_else(|| anyhow!("no {css}"))
    }

    /// Presses a key in an element (which takes focus).
    pub async fn press_in(&self, css: &str, key: Key) -> anyhow::Result<()> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| css.to_owned())?;
        el.send_keys(&char::from(key).to_string())
            .await
            .with_context(|| format!("pressing {key:?} in {css}"))
    }

    /// Presses a key wherever the focus is.
    pub async fn press(&self, key: Key) -> anyhow::Result<()> {
        self.press_char(char::from(key)).await
    }

    /// Types one character wherever the focus is (a key press, as a person makes it).
    pub async fn press_char(&self, value: char) -> anyhow::Result<()> {
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.client
            .perform_actions(actions)
            .await
            .with_context(|| format!("pressing {value:?}"))
    }

    /// Presses `keys` together: each held down in turn, then all let go (Shift+Right).
    pub async fn chord(&self, keys: &[Key]) -> anyhow::Result<()> {
        let mut actions = KeyActions::new("keyboard".into());
        for key in keys {
            actions = actions.then(KeyAction::Down {
                value: char::from(*key),
            });
        }
        for key in keys.iter().rev() {
            actions = actions.then(KeyAction::Up {
                value: char::from(*key),
            });
        }
        self.client
            .perform_actions(actions)
            .await
            .with_context(|| format!("pressing {keys:?}"))
    }

    /// Drags the element `css` to `fraction` of the width of `track`, level with where it
    /// is, with the mouse or (`touch`) a finger.
    pub async fn drag(
        &self,
        css: &str,
        track: &str,
        fraction: f64,
        touch: bool,
    ) -> anyhow::Result<()> {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| css.to_owned())?;
        let (x, y): (f64, f64) = self
            .js(
                "const t = document.querySelector(arguments[0]).getBoundingClientRect();
                 const h = document.querySelector(arguments[1]).getBoundingClientRect();
                 return [t.left + t.width * arguments[2], h.top + h.height / 2];",
                vec![json!(track), json!(css), json!(fraction)],
            )
            .await?;
        let steps = [
            PointerAction::MoveToElement {
                element,
                duration: None,
                x: 0.0,
                y: 0.0,
            },
            PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            },
            PointerAction::MoveTo {
                duration: Some(Duration::from_millis(250)),
                x,
                y,
            },
            PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            },
        ];
        let done = if touch {
            let mut actions = TouchActions::new("finger".into());
            for step in steps {
                actions = actions.then(step);
            }
            self.client.perform_actions(actions).await
        } else {
            let mut actions = MouseActions::new("mouse".into());
            for step in steps {
                actions = actions.then(step);
            }
            self.client.perform_actions(actions).await
        };
        done.with_context(|| format!("dragging {css}"))
    }

    /// Sets the page's viewport, as a window of that size would have it.
    pub async fn viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await?;
        wait_until(
            &format!("a {width}px viewport"),
            Duration::from_secs(5),
            || async { Ok(self.js::<u32>("return window.innerWidth;", vec![]).await? == width) },
        )
        .await
    }

    /// A PNG of the viewport, or of the whole page.
    pub async fn screenshot(&self, path: &Path, full_page: bool) -> anyhow::Result<()> {
        let mut params = json!({"format": "png"});
        if full_page {
            let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
            let size = &metrics["cssContentSize"];
            params["captureBeyondViewport"] = json!(true);
            params["clip"] = json!({
                "x": 0, "y": 0, "scale": 1,
                "width": size["width"], "height": size["height"],
            });
        }
        let shot = self.cdp("Page.captureScreenshot", params).await?;
        let data = shot["data"].as_str().context("a screenshot's data")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
        std::fs::write(path, bytes).with_context(|| path.display().to_string())
    }

    /// Lets the page read and write the clipboard.
    pub async fn allow_clipboard(&self, origin: &str) -> anyhow::Result<()> {
        self.cdp(
            "Browser.grantPermissions",
            json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        )
        .await
        .map(drop)
    }

    /// Waits for a finished download (no `.crdownload` beside it) that was not in `before`,
    /// and moves it to `to`; answers the name the browser gave it.
    pub async fn take_download(&self, before: &[PathBuf], to: &Path) -> anyhow::Result<String> {
        let found = wait_for("a finished download", Duration::from_secs(30), || async {
            let mut done = None;
            let mut partial = false;
            for entry in std::fs::read_dir(&self.downloads)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "crdownload") {
                    partial = true;
                } else if !before.contains(&path) {
                    done = Some(path);
                }
            }
            Ok(done.filter(|_| !partial))
        })
        .await?;
        let name = found
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::rename(&found, to).with_context(|| format!("moving {}", found.display()))?;
        Ok(name)
    }

    /// The files in the download directory now.
    pub fn downloaded(&self) -> anyhow::Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(&self.downloads)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect())
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let closed = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        self.kill_strays();
        closed.context("closing the WebDriver session")
    }

    /// A Chromium left behind by a failed test: found by its profile directory.
    fn kill_strays(&self) {
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.profile.0.as_os_str())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
        self.kill_strays();
    }
}

/// Polls `check` every 100 ms until it answers `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_for`] a condition.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    wait_for(what, timeout, || {
        let fut = check();
        async move { Ok(fut.await?.then_some(())) }
    })
    .await
}
