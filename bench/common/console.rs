//! A console process for the benchmarks: started from the built binary on a free loopback
//! port with its own SQLite database, and (for bench/bytes) a client that signs up and drives
//! it with curl and the tus-js-client script.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use image_console::server_fns::api_tokens::CreateApiToken;
use image_console::server_fns::auth::SignUp;
use image_console::server_fns::certificates::AddCertificate;
use image_console::server_fns::images::{
    CreateDownloadLink, CreateImage, DeleteImage, GetImage, GetImageHistory,
};
use image_console::server_fns::lifecycle::DestroyImages;
use leptos::server_fn::ServerFn;

use super::measure::{Sample, cpu_seconds, curl, header_value, status_kib};

/// Every benchmark account's password.
pub const PASSWORD: &str = "correct horse battery";

/// The Sign Up form's fields for `account` (its user is `admin@<account>`).
pub fn sign_up_form(account: &str) -> [(&'static str, String); 4] {
    [
        ("account_id", account.to_owned()),
        ("user_name", format!("admin@{account}")),
        ("password", PASSWORD.to_owned()),
        ("password_confirm", PASSWORD.to_owned()),
    ]
}

/// Starts the console binary on a free loopback port with the SQLite database `database`,
/// `data_dir` and `site_root`, and `env` on top; the process and the address it announced.
pub fn start_console(
    database: &Path,
    data_dir: &Path,
    site_root: &Path,
    env: &[(&str, String)],
    stderr: Stdio,
) -> (Child, SocketAddr) {
    let mut process = Command::new(env!("CARGO_BIN_EXE_image-console"))
        .env("DATABASE_URL", format!("sqlite://{}", database.display()))
        .env("DATA_DIR", data_dir)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SITE_ROOT", site_root)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the server binary starts");
    let address = image_console::server::read_announced_address(process.stdout.take().unwrap())
        .expect("the server prints its address");
    (process, address)
}

pub struct Console {
    process: Child,
    pub pid: u32,
    pub base: String,
    pub cookie: String,
    /// An API token of the same user, for the image API's steps.
    pub token: String,
}

impl Console {
    /// A console whose database and data directory are `work/<name>`, with `env` on top.
    pub fn start(work: &Path, name: &str, env: &[(&str, String)]) -> Self {
        let (process, address) = start_console(
            &work.join(format!("{name}.db")),
            &work.join(name),
            &work.join("site"),
            &[
                ("IMPORT_SIZE_LIMIT", "64GiB".to_owned()),
                ("IMPORT_ALLOWED_NETWORKS", "127.0.0.1".to_owned()),
                ("MAX_STORAGE_PER_ACCOUNT", "256GiB".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ]
            .into_iter()
            .chain(env.iter().cloned())
            .collect::<Vec<_>>(),
            Stdio::inherit(),
        );
        let pid = process.id();
        let base = format!("http://{address}");
        let mut console = Self {
            process,
            pid,
            base,
            cookie: String::new(),
            token: String::new(),
        };
        let form = sign_up_form("bench");
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (_, cookie) = console.call(SignUp::PATH, &form);
        console.cookie = cookie.expect("signed up");
        let (made, _) = console.call(
            CreateApiToken::PATH,
            &[("name", "bench"), ("lifetime", "30")],
        );
        let made: serde_json::Value = serde_json::from_str(&made).expect("a token");
        console.token = made["secret"].as_str().expect("its secret").to_owned();
        console
    }

    /// Creates an image through the image API and sends `file` as its data in one
    /// `PUT /v2/images/{id}/file` with curl; the PUT's seconds and the image.
    pub fn upload_with_api(&self, file: &Path) -> (f64, String) {
        let token = format!("X-Auth-Token: {}", self.token);
        let output = Command::new("curl")
            .args(["-s", "-H", &token, "-H", "Content-Type: application/json"])
            .args([
                "--data",
                r#"{"name": "bench api", "disk_format": "qcow2", "os_distro": "ubuntu"}"#,
            ])
            .arg(format!("{}/v2/images", self.base))
            .output()
            .expect("curl");
        let created: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the image is created");
        let id = created["id"].as_str().expect("its id").to_owned();
        let (seconds, _, code) = curl(&[
            "-X",
            "PUT",
            "-T",
            file.to_str().unwrap(),
            "-H",
            &token,
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            &format!("{}/v2/images/{id}/file", self.base),
        ]);
        assert_eq!(code, 204, "the data is taken whole");
        (seconds, id)
    }

    /// Calls a server function; its JSON body and the cookie it set, if any.
    fn call(&self, path: &str, form: &[(&str, &str)]) -> (String, Option<String>) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let output = Command::new("curl")
            .args(["-s", "-D", "-", "-H", "Accept: application/json"])
            .args(["-H", "Sec-Fetch-Site: same-origin", "--data", &body])
            .args(["-H", &format!("Cookie: {}", self.cookie)])
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let cookie = header_value(head, "set-cookie")
            .map(|c| c.split(';').next().unwrap_or_default().to_owned());
        (body.to_owned(), cookie)
    }

    fn create(&self, source: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("name", "bench bytes"),
            ("os_family", "linux"),
            ("os_platform", "ubuntu"),
            ("min_disk", "20"),
            ("min_ram", "1"),
            ("visibility", "private"),
            ("description", ""),
        ];
        form.extend_from_slice(source);
        let (body, _) = self.call(CreateImage::PATH, &form);
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("image created: {body}"))
    }

    pub fn status(&self, id: &str) -> String {
        let (body, _) = self.call(GetImage::PATH, &[("id", id)]);
        let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
        detail["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Milliseconds between the image's first Work History events of `from` and `to`
    /// (topics as the server function names them, such as `ImportFinished`).
    pub fn event_gap_ms(&self, id: &str, from: &str, to: &str) -> i64 {
        let (body, _) = self.call(GetImageHistory::PATH, &[("id", id), ("page", "1")]);
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        let at = |topic: &str| {
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|e| e["topic"] == topic)
                .and_then(|e| e["at_ms"].as_i64())
                .unwrap_or_else(|| panic!("no {topic} event: {body}"))
        };
        at(to) - at(from)
    }

    pub fn delete(&self, id: &str) {
        self.call(DeleteImage::PATH, &[("id", id)]);
    }

    /// Deletes the image and destroys it from the Recycle Bin at once, freeing its bytes.
    pub fn destroy(&self, id: &str) {
        self.delete(id);
        let (body, _) = self.call(DestroyImages::PATH, &[("ids[0]", id)]);
        assert!(!body.contains("\"error\""), "destroyed: {body}");
    }

    pub fn download_link(&self, id: &str) -> String {
        let (body, _) = self.call(CreateDownloadLink::PATH, &[("id", id)]);
        let link: serde_json::Value = serde_json::from_str(&body).unwrap();
        format!("{}{}", self.base, link["path"].as_str().unwrap())
    }

    fn create_upload(&self, file: &Path, size: u64, extra: &[(&str, &str)]) -> String {
        let size = size.to_string();
        let mut form = vec![
            ("source", "file"),
            ("file_name", file.file_name().unwrap().to_str().unwrap()),
            ("file_size", size.as_str()),
        ];
        form.extend_from_slice(extra);
        self.create(&form)
    }

    /// Creates an image and uploads `file` to it in one PATCH with curl; the PATCH's seconds.
    pub fn upload_with_curl(&self, file: &Path, size: u64) -> (f64, String) {
        self.upload_with_curl_as(file, size, &[])
    }

    /// The same, for an encrypted image (under the account's default key).
    pub fn upload_encrypted_with_curl(&self, file: &Path, size: u64) -> (f64, String) {
        self.upload_with_curl_as(file, size, &[("encryption", "on")])
    }

    /// Uploads a signing certificate (PEM); its id.
    pub fn add_certificate(&self, pem: &str) -> String {
        let (body, _) = self.call(AddCertificate::PATH, &[("certificate_pem", pem)]);
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("certificate added: {body}"))
    }

    /// The same, for a signed image (the Create Image form's Signature fields).
    pub fn upload_signed_with_curl(
        &self,
        file: &Path,
        size: u64,
        signature: &[(&str, &str)],
    ) -> (f64, String) {
        self.upload_with_curl_as(file, size, signature)
    }

    /// The same, for an image converted to `target` once its bytes are in.
    pub fn upload_converted_with_curl(
        &self,
        file: &Path,
        size: u64,
        target: &str,
    ) -> (f64, String) {
        self.upload_with_curl_as(file, size, &[("convert_to", target)])
    }

    fn upload_with_curl_as(&self, file: &Path, size: u64, extra: &[(&str, &str)]) -> (f64, String) {
        let id = self.create_upload(file, size, extra);
        let output = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST"])
            .args(["-H", "Tus-Resumable: 1.0.0"])
            .args(["-H", &format!("Upload-Length: {size}")])
            .args(["-H", &format!("Cookie: {}", self.cookie)])
            .arg(format!("{}/images/{id}/uploads", self.base))
            .output()
            .expect("curl");
        let head = String::from_utf8_lossy(&output.stdout);
        let location = header_value(&head, "location").expect("the upload is created");
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let (seconds, _, code) = curl(&[
            "-X",
            "PATCH",
            "-T",
            file.to_str().unwrap(),
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Offset: 0",
            "-H",
            "Content-Type: application/offset+octet-stream",
            "-H",
            "Expect:",
            "-H",
            &format!("Cookie: {}", self.cookie),
            &url,
        ]);
        assert_eq!(code, 204, "the PATCH is taken whole");
        (seconds, id)
    }

    /// Creates an image and uploads `file` with tus-js-client in 64 MiB pieces; its seconds,
    /// the image and the client's own CPU seconds.
    pub fn upload_with_tus_js(&self, file: &Path, size: u64, root: &Path) -> (f64, String, f64) {
        let id = self.create_upload(file, size, &[]);
        let output = Command::new("node")
            .arg(root.join("end2end/clients/tus-js-upload.mjs"))
            .arg(format!("{}/images/{id}/uploads", self.base))
            .arg(&self.cookie)
            .arg(file)
            .arg("bench")
            .arg("64")
            .output()
            .expect("node runs tus-js-client");
        assert!(
            output.status.success(),
            "upload failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the client prints its figures");
        (
            result["seconds"].as_f64().unwrap(),
            id,
            result["cpu_seconds"].as_f64().unwrap(),
        )
    }

    /// Creates an image from `url` and waits for it; the seconds from creation to Active.
    pub fn import(&self, url: &str) -> (f64, String) {
        let began = Instant::now();
        let id = self.create(&[("source", "url"), ("source_url", url)]);
        loop {
            match self.status(&id).as_str() {
                "Active" => return (began.elapsed().as_secs_f64(), id),
                "Failed" => panic!("the import failed"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The server's resident memory now, by kind.
    pub fn memory(&self) -> String {
        let kib = |field| status_kib(self.pid, field) / 1024;
        format!(
            "server RSS {} MiB (anonymous {} MiB, files {} MiB)",
            kib("VmRSS:"),
            kib("RssAnon:"),
            kib("RssFile:")
        )
    }

    /// Runs `step`, reporting the server's CPU seconds and its peak memory during it.
    pub fn measure(&self, step: impl FnOnce() -> f64) -> Sample {
        // Writing 5 to clear_refs resets VmHWM to the current resident size.
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").unwrap();
        let cpu = cpu_seconds(self.pid);
        let seconds = step();
        Sample {
            seconds,
            cpu: cpu_seconds(self.pid) - cpu,
            peak_kib: status_kib(self.pid, "VmHWM:"),
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
