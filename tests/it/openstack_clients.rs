//! The real OpenStack clients against the real server: `glance` (python-glanceclient) and
//! `openstack` (python-openstackclient), as `scripts/ensure-tools test` pins them in
//! `target/tools/openstack`, each through a whole session. Every command's exit status and
//! output is checked; downloads are compared byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::Server;
use crate::on_both_databases;
use crate::signatures::Signer;
use crate::support::{Backend, TestDb, qemu_img};
use crate::support::{Client, text};
use image_console::domain::signature::{HashMethod, KeyType};
use image_console::server_fns::certificates::AddCertificate;
use leptos::server_fn::ServerFn;

/// A client program from the pinned virtual environment.
fn client(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tools/openstack/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/ensure-tools test",
        path.display()
    );
    path
}

/// One user of the API: its token and the endpoint.
struct User {
    token: String,
    endpoint: String,
    home: tempfile::TempDir,
}

/// What a command did.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl User {
    fn run(&self, program: &str, args: &[&str]) -> Ran {
        let mut command = Command::new(client(program));
        // No cloud configuration, cache or proxy from the machine running the tests.
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8");
        match program {
            "glance" => {
                command.args([
                    "--os-image-url",
                    &self.endpoint,
                    "--os-auth-token",
                    &self.token,
                ]);
            }
            _ => {
                command.args([
                    "--os-auth-type",
                    "admin_token",
                    "--os-endpoint",
                    &format!("{}/v2", self.endpoint),
                    "--os-token",
                    &self.token,
                ]);
            }
        }
        // No standard input at all: glanceclient reads image data from a stdin that is not a
        // terminal, and refuses --file beside it.
        // SAFETY: `close` is async-signal-safe, and nothing else runs in the child yet.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::close(0);
                Ok(())
            });
        }
        let output = command.args(args).output().expect("the client runs");
        Ran {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; its standard output.
    fn ok(&self, program: &str, args: &[&str]) -> String {
        let ran = self.run(program, args);
        if !ran.ok {
            // The same command again with --debug, whose requests say what went wrong.
            let mut debug = vec!["--debug"];
            debug.extend_from_slice(args);
            let again = self.run(program, &debug);
            let tail: Vec<&str> = again.stderr.lines().rev().take(80).collect();
            panic!(
                "{program} {args:?} failed:\n{}\n{}\n--debug:\n{}",
                ran.stdout,
                ran.stderr,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        ran.stdout
    }

    /// Runs a command that must fail; what it said.
    fn fails(&self, program: &str, args: &[&str]) -> String {
        let ran = self.run(program, args);
        assert!(!ran.ok, "{program} {args:?} succeeded:\n{}", ran.stdout);
        format!("{}{}", ran.stdout, ran.stderr)
    }

    /// `openstack … -f json`.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.ok("openstack", &all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// A value from glanceclient's property table: `| key | value |`.
fn table_value(table: &str, key: &str) -> Option<String> {
    table.lines().find_map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        (cells.len() >= 3 && cells[1] == key).then(|| cells[2].to_owned())
    })
}

async fn user(server: &Server, account: &str) -> User {
    let client = Client::remote(&server.base);
    let cookie = client.sign_up(account).await;
    User {
        token: client.api_token(&cookie, "openstack clients").await,
        endpoint: server.base.clone(),
        home: tempfile::tempdir().unwrap(),
    }
}

/// A qcow2 file with some data in it, and its bytes.
fn disk(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    qemu_img(&["create", "-q", "-f", "qcow2", path.to_str().unwrap(), "16M"]);
    let mut bytes = std::fs::read(&path).unwrap();
    // Data past the header, so a download that dropped or reordered bytes shows.
    bytes.extend((0..65_536u32).map(|i| (i % 251) as u8));
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// A raw disk file (1 MiB of a pattern); its path.
fn raw_disk(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..1_048_576u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A real server on a fresh database, its two accounts' users (acme and globex), and a disk
/// file to send.
struct Setting {
    db: TestDb,
    data: tempfile::TempDir,
    server: Server,
    alice: User,
    bob: User,
    file: String,
    bytes: Vec<u8>,
}

impl Setting {
    async fn new(backend: Backend, disk_name: &str) -> Self {
        let db = TestDb::new(backend).await;
        let data = tempfile::tempdir().unwrap();
        let server = Server::start_with(db.url(), data.path(), &[]);
        let (alice, bob) = (user(&server, "acme").await, user(&server, "globex").await);
        let (file, bytes) = disk(data.path(), disk_name);
        let file = file.to_str().unwrap().to_owned();
        Self {
            db,
            data,
            server,
            alice,
            bob,
            file,
            bytes,
        }
    }
}

fn wait_active(user: &User, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = user.ok("glance", &["image-show", id]);
        if table_value(&shown, "status").as_deref() == Some("active") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became active:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn glance_client_session(backend: Backend) {
    // Bound in this order, they are dropped server first, database last.
    let Setting {
        db: _db,
        data: _data,
        server: _server,
        alice,
        bob,
        file,
        bytes,
    } = Setting::new(backend, "glance.qcow2").await;

    tokio::task::spawn_blocking(move || {
        // Create with upload.
        let created = alice.ok(
            "glance",
            &[
                "image-create",
                "--name",
                "glance-one",
                "--disk-format",
                "qcow2",
                "--container-format",
                "bare",
                "--property",
                "os_distro=ubuntu",
                "--file",
                &file,
            ],
        );
        let id = table_value(&created, "id").expect("image-create prints the id");
        assert_eq!(
            table_value(&created, "status").as_deref(),
            Some("active"),
            "{created}"
        );
        assert_eq!(table_value(&created, "size"), Some(bytes.len().to_string()));

        // List, show, update.
        assert!(alice.ok("glance", &["image-list"]).contains(&id));
        let shown = alice.ok("glance", &["image-show", &id]);
        assert_eq!(table_value(&shown, "name").as_deref(), Some("glance-one"));
        assert_eq!(
            table_value(&shown, "os_hash_algo").as_deref(),
            Some("sha512")
        );
        alice.ok(
            "glance",
            &[
                "image-update",
                &id,
                "--name",
                "glance-two",
                "--min-disk",
                "5",
                "--min-ram",
                "2048",
                "--protected",
                "True",
            ],
        );
        let shown = alice.ok("glance", &["image-show", &id]);
        assert_eq!(table_value(&shown, "name").as_deref(), Some("glance-two"));
        assert_eq!(table_value(&shown, "min_disk").as_deref(), Some("5"));
        assert_eq!(table_value(&shown, "min_ram").as_deref(), Some("2048"));
        assert_eq!(table_value(&shown, "protected").as_deref(), Some("True"));

        // Tags.
        alice.ok("glance", &["image-tag-update", &id, "web"]);
        assert!(
            table_value(&alice.ok("glance", &["image-show", &id]), "tags")
                .unwrap()
                .contains("web")
        );
        alice.ok("glance", &["image-tag-delete", &id, "web"]);
        assert!(
            !table_value(&alice.ok("glance", &["image-show", &id]), "tags")
                .unwrap_or_default()
                .contains("web")
        );

        // A member, accepted by the other account's user, which then lists the image.
        let member = alice.ok("glance", &["member-create", &id, "globex"]);
        assert!(member.contains("pending"), "{member}");
        assert!(!bob.ok("glance", &["image-list"]).contains(&id));
        let accepted = bob.ok("glance", &["member-update", &id, "globex", "accepted"]);
        assert!(accepted.contains("accepted"), "{accepted}");
        assert!(bob.ok("glance", &["image-list"]).contains(&id));
        assert!(
            alice
                .ok("glance", &["member-list", "--image-id", &id])
                .contains("globex")
        );

        // Download, byte for byte (glanceclient checks the MD5 too), by owner and member.
        for (who, name) in [(&alice, "alice.out"), (&bob, "bob.out")] {
            let out = std::env::temp_dir().join(format!("{id}-{name}"));
            who.ok(
                "glance",
                &["image-download", &id, "--file", out.to_str().unwrap()],
            );
            assert_eq!(std::fs::read(&out).unwrap(), bytes, "{name}");
            std::fs::remove_file(out).unwrap();
        }

        // Delete: refused while protected, then done.
        // glanceclient words a 403 on delete itself.
        let refused = alice.fails("glance", &["image-delete", &id]);
        assert!(refused.contains("not permitted to delete"), "{refused}");
        alice.ok("glance", &["image-update", &id, "--protected", "False"]);
        alice.ok("glance", &["image-delete", &id]);
        assert!(!alice.ok("glance", &["image-list"]).contains(&id));
        alice.fails("glance", &["image-show", &id]);

        // Create through an import (glance-direct: stage, then import).
        let imported = alice.ok(
            "glance",
            &[
                "image-create-via-import",
                "--name",
                "glance-import",
                "--disk-format",
                "qcow2",
                "--container-format",
                "bare",
                "--property",
                "os_distro=ubuntu",
                "--import-method",
                "glance-direct",
                "--file",
                &file,
            ],
        );
        let id = table_value(&imported, "id").expect("the id");
        wait_active(&alice, &id);
        let out = std::env::temp_dir().join(format!("{id}.out"));
        alice.ok(
            "glance",
            &["image-download", &id, "--file", out.to_str().unwrap()],
        );
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        std::fs::remove_file(out).unwrap();

        // A VMDK through an import, converted to qcow2 as its creation asked.
        let dir = Path::new(&file).parent().unwrap();
        let original = raw_disk(dir, "original.raw");
        let vmdk = dir.join("disk.vmdk");
        let vmdk = vmdk.to_str().unwrap();
        qemu_img(&[
            "convert",
            "-q",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            &original,
            vmdk,
        ]);
        let imported = alice.ok(
            "glance",
            &[
                "image-create-via-import",
                "--name",
                "converted",
                "--disk-format",
                "vmdk",
                "--container-format",
                "bare",
                "--property",
                "convert_to=qcow2",
                "--import-method",
                "glance-direct",
                "--file",
                vmdk,
            ],
        );
        let id = table_value(&imported, "id").expect("the id");
        wait_active(&alice, &id);
        let shown = alice.ok("glance", &["image-show", &id]);
        assert_eq!(
            table_value(&shown, "disk_format").as_deref(),
            Some("qcow2"),
            "{shown}"
        );
        assert_eq!(
            table_value(&shown, "source_disk_format").as_deref(),
            Some("vmdk"),
            "{shown}"
        );
        assert_eq!(
            table_value(&shown, "source_size"),
            Some(std::fs::metadata(vmdk).unwrap().len().to_string())
        );
        let out = std::env::temp_dir().join(format!("{id}.qcow2"));
        alice.ok(
            "glance",
            &["image-download", &id, "--file", out.to_str().unwrap()],
        );
        let compared = std::process::Command::new("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "qcow2", &original])
            .arg(&out)
            .status()
            .unwrap();
        assert!(
            compared.success(),
            "the converted image differs from the disk"
        );
        std::fs::remove_file(out).unwrap();

        // What a plain script sends: no operating system. Accepted, and Not specified.
        let raw_file = raw_disk(Path::new(&file).parent().unwrap(), "plain.raw");
        let plain = alice.ok(
            "glance",
            &[
                "image-create",
                "--name",
                "plain",
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                "--file",
                &raw_file,
            ],
        );
        assert_eq!(
            table_value(&plain, "status").as_deref(),
            Some("active"),
            "{plain}"
        );
        assert_eq!(table_value(&plain, "os_distro"), None, "{plain}");
        assert_eq!(table_value(&plain, "disk_format").as_deref(), Some("raw"));

        // A chosen id, and a disk format changed while the image waits for its data.
        let chosen = "7b0c1f52-5a44-4d0e-9c62-2f1a8e3b9d10";
        let queued = alice.ok(
            "glance",
            &[
                "image-create",
                "--id",
                chosen,
                "--name",
                "chosen",
                "--disk-format",
                "qcow2",
                "--container-format",
                "bare",
            ],
        );
        assert_eq!(
            table_value(&queued, "id").as_deref(),
            Some(chosen),
            "{queued}"
        );
        assert_eq!(table_value(&queued, "status").as_deref(), Some("queued"));
        let taken = alice.fails(
            "glance",
            &[
                "image-create",
                "--id",
                chosen,
                "--name",
                "again",
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
            ],
        );
        assert!(taken.contains("already exists"), "{taken}");
        let changed = alice.ok("glance", &["image-update", chosen, "--disk-format", "raw"]);
        assert_eq!(
            table_value(&changed, "disk_format").as_deref(),
            Some("raw"),
            "{changed}"
        );
        alice.ok("glance", &["image-upload", chosen, "--file", &raw_file]);
        wait_active(&alice, chosen);
        // Once the data is in, the format is fixed.
        let fixed = alice.fails(
            "glance",
            &["image-update", chosen, "--disk-format", "qcow2"],
        );
        assert!(
            fixed.contains("fixed once the image's data arrives"),
            "{fixed}"
        );

        // A wrong token is refused with the API's message.
        let stranger = User {
            token: format!("imgc_{}", "x".repeat(43)),
            endpoint: alice.endpoint.clone(),
            home: tempfile::tempdir().unwrap(),
        };
        let refused = stranger.fails("glance", &["image-list"]);
        assert!(
            refused.contains("Invalid OpenStack Identity credentials"),
            "{refused}"
        );
    })
    .await
    .unwrap();
}

async fn openstack_client_session(backend: Backend) {
    // Bound in this order, they are dropped server first, database last.
    let Setting {
        db: _db,
        data: _data,
        server: _server,
        alice,
        bob,
        file,
        bytes,
    } = Setting::new(backend, "openstack.qcow2").await;

    tokio::task::spawn_blocking(move || {
        // Create with upload.
        let created = alice.json(&[
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--property",
            "os_distro=ubuntu",
            "--file",
            &file,
            "openstack-one",
        ]);
        let id = created["id"].as_str().expect("the id").to_owned();
        let shown = alice.json(&["image", "show", &id]);
        assert_eq!(shown["status"], "active", "{shown}");
        assert_eq!(shown["size"], bytes.len() as u64);

        // List, show, update.
        let listed = alice.json(&["image", "list"]);
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["ID"] == id.as_str()),
            "{listed}"
        );
        alice.ok(
            "openstack",
            &[
                "image",
                "set",
                "--name",
                "openstack-two",
                "--min-disk",
                "5",
                "--min-ram",
                "2048",
                "--protected",
                &id,
            ],
        );
        let shown = alice.json(&["image", "show", &id]);
        assert_eq!(shown["name"], "openstack-two");
        assert_eq!(shown["min_disk"], 5);
        assert_eq!(shown["min_ram"], 2048);
        assert_eq!(shown["protected"], true);

        // Tags.
        alice.ok("openstack", &["image", "set", "--tag", "web", &id]);
        assert!(
            alice.json(&["image", "show", &id])["tags"]
                .to_string()
                .contains("web")
        );
        alice.ok("openstack", &["image", "unset", "--tag", "web", &id]);
        assert!(
            !alice.json(&["image", "show", &id])["tags"]
                .to_string()
                .contains("web")
        );

        // A member, accepted by the other account's user, which then lists the image.
        alice.ok("openstack", &["image", "add", "project", &id, "globex"]);
        bob.ok(
            "openstack",
            &["image", "set", "--accept", "--project", "globex", &id],
        );
        let bobs = bob.json(&["image", "list"]);
        assert!(
            bobs.as_array()
                .unwrap()
                .iter()
                .any(|i| i["ID"] == id.as_str()),
            "{bobs}"
        );

        // Download, byte for byte.
        let out = std::env::temp_dir().join(format!("{id}.openstack.out"));
        bob.ok(
            "openstack",
            &["image", "save", "--file", out.to_str().unwrap(), &id],
        );
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        std::fs::remove_file(out).unwrap();

        // A chosen id and no operating system, as scripts send.
        let chosen = "3c9e6a1d-2b7f-4e08-a5d3-9f1b0c2e4d67";
        let raw_file = raw_disk(Path::new(&file).parent().unwrap(), "openstack.raw");
        let plain = alice.json(&[
            "image",
            "create",
            "--id",
            chosen,
            "--disk-format",
            "raw",
            "--file",
            &raw_file,
            "openstack-plain",
        ]);
        assert_eq!(plain["id"], chosen, "{plain}");
        let shown = alice.json(&["image", "show", chosen]);
        assert_eq!(shown["status"], "active", "{shown}");
        assert!(shown["properties"].get("os_distro").is_none(), "{shown}");

        // Delete: refused while protected, then done.
        let refused = alice.fails("openstack", &["image", "delete", &id]);
        assert!(
            refused.contains("Protected") || refused.contains("protected"),
            "{refused}"
        );
        alice.ok("openstack", &["image", "set", "--unprotected", &id]);
        alice.ok("openstack", &["image", "delete", &id]);
        alice.fails("openstack", &["image", "show", &id]);

        // Create through an import (glance-direct).
        let imported = alice.json(&[
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--property",
            "os_distro=ubuntu",
            "--import",
            "--file",
            &file,
            "openstack-import",
        ]);
        let id = imported["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        while alice.json(&["image", "show", &id])["status"] != "active" {
            assert!(Instant::now() < deadline, "the import never finished");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
}

/// A Glance signing pipeline, unchanged: sign with openssl, then `glance image-create
/// --property img_signature=… --file`; the image is Active and verified. A signature of other
/// bytes is refused and the image killed, keeping nothing.
async fn glance_signing_pipeline_verifies(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(db.url(), data.path(), &[]);
    let client = Client::remote(&server.base);
    let cookie = client.sign_up("acme").await;
    let alice = User {
        token: client.api_token(&cookie, "signing pipeline").await,
        endpoint: server.base.clone(),
        home: tempfile::tempdir().unwrap(),
    };
    let signer = Signer::new(KeyType::RsaPss, "/CN=Pipeline/O=Acme");
    let added = client
        .call(
            AddCertificate::PATH,
            &[("certificate_pem", signer.certificate_pem())],
            Some(&cookie),
        )
        .await;
    assert_eq!(added.status(), axum::http::StatusCode::OK);
    let certificate: String = serde_json::from_str(&text(added).await).unwrap();
    let (file, _) = disk(data.path(), "signed.qcow2");
    let other = raw_disk(data.path(), "other.raw");
    let signature = signer.sign(&file, HashMethod::Sha256);
    let wrong = signer.sign(Path::new(&other), HashMethod::Sha256);
    let file = file.to_str().unwrap().to_owned();

    tokio::task::spawn_blocking(move || {
        let create = |name: &str, signature: &str| {
            let properties = [
                format!("img_signature={signature}"),
                "img_signature_hash_method=SHA-256".to_owned(),
                "img_signature_key_type=RSA-PSS".to_owned(),
                format!("img_signature_certificate_uuid={certificate}"),
            ];
            let mut args = vec![
                "image-create",
                "--name",
                name,
                "--disk-format",
                "qcow2",
                "--container-format",
                "bare",
            ];
            for property in &properties {
                args.extend(["--property", property.as_str()]);
            }
            args.extend(["--file", file.as_str()]);
            alice.run("glance", &args)
        };
        let created = create("signed", &signature);
        assert!(created.ok, "{}", created.stderr);
        let id = table_value(&created.stdout, "id").unwrap();
        let shown = alice.ok("glance", &["image-show", &id]);
        assert_eq!(table_value(&shown, "status").as_deref(), Some("active"));
        assert_eq!(
            table_value(&shown, "img_signature_key_type").as_deref(),
            Some("RSA-PSS")
        );

        let refused = create("tampered", &wrong);
        assert!(!refused.ok, "{}", refused.stdout);
        assert!(
            refused.stderr.contains("does not verify"),
            "{}",
            refused.stderr
        );
        let listed = alice.ok("glance", &["image-list"]);
        let tampered = listed
            .lines()
            .find(|l| l.contains("tampered"))
            .and_then(|l| l.split('|').nth(1))
            .map(|id| id.trim().to_owned())
            .expect("the tampered image is listed");
        let shown = alice.ok("glance", &["image-show", &tampered]);
        assert_eq!(table_value(&shown, "status").as_deref(), Some("killed"));
        assert_eq!(table_value(&shown, "size").as_deref(), Some("None"));
    })
    .await
    .unwrap();
    drop(server);
}

/// `openstack image create --property os_hidden=true`: the image is hidden, left out of
/// `image list` and listed by `image list --hidden`.
async fn openstack_hides_images(backend: Backend) {
    let Setting {
        db: _db,
        data: _data,
        server: _server,
        alice,
        bob: _bob,
        file,
        bytes: _,
    } = Setting::new(backend, "hidden.qcow2").await;
    tokio::task::spawn_blocking(move || {
        let shown = alice.json(&[
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--file",
            &file,
            "listed",
        ]);
        let hidden = alice.json(&[
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--property",
            "os_hidden=true",
            "--file",
            &file,
            "hidden",
        ]);
        let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
        let (shown, hidden) = (id(&shown), id(&hidden));
        let listed = |args: &[&str]| -> Vec<String> {
            alice
                .json(args)
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["ID"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(listed(&["image", "list"]), vec![shown.clone()]);
        assert_eq!(listed(&["image", "list", "--hidden"]), vec![hidden.clone()]);
        let detail = alice.json(&["image", "show", &hidden]);
        assert_eq!(detail["properties"]["os_hidden"], true, "{detail}");
    })
    .await
    .unwrap();
}

on_both_databases!(
    openstack_hides_images,
    glance_client_session,
    openstack_client_session,
    glance_signing_pipeline_verifies
);
