//! The servers bench/bytes measures the console against, or through: nginx (the limit for
//! serving a file) and s3s-fs (object storage on the same disk).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::measure::{curl, free_port};

pub struct Nginx {
    pub process: Child,
    pub port: u16,
}

impl Nginx {
    /// nginx serving `root` with the bench's config, on a free loopback port.
    pub fn start(root: &Path, work: &Path, config: &Path) -> Self {
        let port = free_port();
        let prefix = work.join("nginx");
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let text = std::fs::read_to_string(config)
            .unwrap()
            .replace("@PORT@", &port.to_string())
            .replace("@ROOT@", root.to_str().unwrap());
        let filled = prefix.join("nginx.conf");
        std::fs::write(&filled, text).unwrap();
        let process = Command::new("nginx")
            .args(["-e", "stderr", "-p"])
            .arg(&prefix)
            .arg("-c")
            .arg(&filled)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts (apt-get install nginx)");
        let began = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { process, port }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// s3s-fs, a real S3 server over a directory on the same disk, for the object-storage steps.
pub struct S3Server {
    pub process: Child,
    pub endpoint: String,
    pub key: String,
    pub secret: String,
}

impl S3Server {
    pub fn start(root: &Path, work: &Path) -> Self {
        let dir = work.join("s3");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let (key, secret) = (
            "bench-key".to_owned(),
            hex::encode(rand::random::<[u8; 16]>()),
        );
        let mut process = Command::new(root.join("target/tools/s3s-fs/bin/s3s-fs"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &key, "--secret-key", &secret])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts (scripts/ensure-tools bench installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        // CreateBucket through the S3 API, as any client makes one.
        let empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for _ in 0..100 {
            let status = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "-X", "PUT"])
                .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
                .args(["--user", &format!("{key}:{secret}")])
                .args(["-H", &format!("x-amz-content-sha256: {empty_sha256}")])
                .arg(format!("{endpoint}/bench"))
                .status()
                .unwrap();
            if status.success() {
                return Self {
                    process,
                    endpoint,
                    key,
                    secret,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = process.kill();
        let _ = process.wait();
        panic!("s3s-fs did not create the bucket");
    }
}

impl S3Server {
    /// curl, signed with the bench's keys, on `bench/<key>`; its seconds.
    pub fn curl(&self, args: &[&str], key: &str) -> f64 {
        let credentials = format!("{}:{}", self.key, self.secret);
        let url = format!("{}/bench/{key}", self.endpoint);
        let mut all = vec![
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &credentials,
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ];
        all.extend_from_slice(args);
        all.push(&url);
        let (seconds, _, code) = curl(&all);
        assert_eq!(code, 200, "s3s-fs answers {url}");
        seconds
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
