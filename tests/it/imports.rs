//! URL imports end to end: a local HTTP server serves real qcow2 files made by qemu-img.

use image_console::domain::image::{DiskFormat, ImageStatus};
use image_console::service::ServiceError;

use crate::support::{
    Backend, PASSWORD, SourceServer, TestApp, create_form, qemu_img, sha512_hex, test_settings,
};

async fn import_makes_an_active_image_with_hashes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("ubuntu.qcow2", "1G");
    // Give the image real content so the hashes cover more than a header.
    qemu_img(&["resize", "-q", file.to_str().unwrap(), "2G"]);
    let bytes = std::fs::read(&file).unwrap();
    let actor = app.sign_up("acme").await;

    let id = app
        .services
        .create_image(
            &actor,
            &create_form("ubuntu base", &source.url("files", "ubuntu.qcow2")),
        )
        .await
        .unwrap();
    let queued = app.services.get_image(&actor, &id).await.unwrap();
    assert!(queued.status.is_in_progress(), "{queued:?}");

    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(
        image.status,
        ImageStatus::Active,
        "{:?}",
        image.failure_reason
    );
    assert_eq!(image.failure_reason, None);
    assert_eq!(image.disk_format, Some(DiskFormat::Qcow2));
    assert_eq!(image.size_bytes, Some(bytes.len() as u64));
    assert_eq!(image.virtual_size_bytes, Some(2 << 30));
    assert_eq!(image.hash_algorithm.as_deref(), Some("sha512"));
    assert_eq!(
        image.hash_value.as_deref(),
        Some(sha512_hex(&file).as_str())
    );
    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&bytes))
    };
    assert_eq!(image.checksum_md5.as_deref(), Some(md5.as_str()));
    assert_eq!(
        image.source_url.as_deref(),
        Some(source.url("files", "ubuntu.qcow2").as_str())
    );
    assert_eq!(image.image_type, "Image-Based");
    assert_eq!(image.created_by, "admin@acme");
    assert!(image.srn.contains(":acme:") && image.srn.ends_with(&id));

    // The stored bytes are exactly the source's, and nothing is left in staging.
    let stored = app.stored_bytes(&id).await;
    assert_eq!(stored, bytes);
    assert_eq!(app.stored_files().await, (vec![id.clone()], vec![]));

    let list = crate::support::all_images(&app.services, &actor).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, ImageStatus::Active);
    assert_eq!(list[0].size_bytes, Some(bytes.len() as u64));
}

/// Imports `url` and returns the failure reason shown on the image.
async fn failure_reason(app: &TestApp, url: &str) -> String {
    let actor = app.sign_up_once().await;
    let id = app
        .services
        .create_image(&actor, &create_form("bad image", url))
        .await
        .unwrap();
    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(image.status, ImageStatus::Failed, "{url} should fail");
    assert_eq!(image.size_bytes, None);
    assert_eq!(image.hash_value, None);
    // A failed import leaves no bytes anywhere.
    assert_eq!(
        app.stored_files().await,
        (vec![], vec![]),
        "bytes left after {url}"
    );
    image.failure_reason.expect("a failed image says why")
}

impl TestApp {
    /// The one account of a failure test, created on first use.
    async fn sign_up_once(&self) -> image_console::service::Actor {
        match self
            .services
            .sign_in(crate::support::CLIENT, "admin@acme", PASSWORD)
            .await
        {
            Ok((_, token)) => self.services.authenticate(&token).await.unwrap().unwrap(),
            Err(_) => self.sign_up("acme").await.actor,
        }
    }
}

async fn import_failures_say_why(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("base.qcow2", "16M");
    let child = source.path("child.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        source.path("base.qcow2").to_str().unwrap(),
        "-F",
        "qcow2",
        child.to_str().unwrap(),
    ]);
    let external = source.path("external.qcow2");
    let data = source.path("external.raw");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={}", data.display()),
        external.to_str().unwrap(),
        "16M",
    ]);
    let encrypted = source.path("encrypted.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=sec0,data=123456",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0",
        encrypted.to_str().unwrap(),
        "16M",
    ]);
    let random: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    source.file("random.qcow2", &random);
    source.file("empty.qcow2", b"");

    let cases = [
        (
            source.url("files", "missing.qcow2"),
            "The source answered HTTP 404 Not Found. There is no file at that URL.",
        ),
        (
            source.url("files", "random.qcow2"),
            "The file is not a qcow2 image: it does not start with the qcow2 signature.",
        ),
        (
            source.url("files", "empty.qcow2"),
            "The file is not a qcow2 image: it does not start with the qcow2 signature.",
        ),
        (
            source.url("files", "child.qcow2"),
            "The qcow2 image refers to a backing file; only self-contained images can be imported.",
        ),
        (
            source.url("files", "external.qcow2"),
            "The qcow2 image keeps its data in an external data file; only self-contained images can be imported.",
        ),
        (
            source.url("files", "encrypted.qcow2"),
            "The qcow2 image is encrypted; encrypted images cannot be imported.",
        ),
    ];
    for (url, expected) in cases {
        assert_eq!(failure_reason(&app, &url).await, expected, "for {url}");
    }

    let truncated = failure_reason(&app, &source.url("truncated", "base.qcow2")).await;
    assert!(
        truncated.starts_with("The download from 127.0.0.1 broke off after"),
        "{truncated}"
    );

    // Nothing listens on this port: bind one, note it, and close it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = failure_reason(&app, &format!("http://127.0.0.1:{port}/x.qcow2")).await;
    assert_eq!(
        refused,
        "Could not connect to 127.0.0.1: the connection was refused."
    );
}

/// Makes `name` in the source directory with qemu-img in `format`, with extra `options`.
fn make_image(source: &SourceServer, name: &str, format: &str, options: &[&str]) -> Vec<u8> {
    let path = source.path(name);
    let mut args = vec!["create", "-q", "-f", format];
    args.extend_from_slice(options);
    args.extend([path.to_str().unwrap(), "16M"]);
    qemu_img(&args);
    std::fs::read(path).unwrap()
}

/// An ISO 9660 image of 100 blocks: an empty system area, a primary volume descriptor at
/// sector 16 and a terminator.
pub(crate) fn iso_image() -> Vec<u8> {
    let mut iso = vec![0u8; 40 * 2048];
    let pvd = 16 * 2048;
    iso[pvd] = 1;
    iso[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
    iso[pvd + 80..pvd + 84].copy_from_slice(&100u32.to_le_bytes());
    iso[pvd + 128..pvd + 130].copy_from_slice(&2048u16.to_le_bytes());
    iso[pvd + 2048] = 255;
    iso[pvd + 2049..pvd + 2054].copy_from_slice(b"CD001");
    iso
}

fn unaccepted(detected: &str, declared: &str) -> String {
    format!(
        "The file is a {detected} image, not the {declared} image it was declared to be; {detected} images are not accepted (convert it to qcow2 or raw with qemu-img convert first)."
    )
}

const BARE_DESCRIPTOR: &str = "The file is a bare VMDK descriptor, whose data lives in the files it names; only monolithicSparse and streamOptimized VMDK images, which carry their data, can be imported.";

/// Every format qemu recognises by probing is found in a file declared raw (named `.img`),
/// and refused naming both: a hypervisor that probes would open the file as that format.
/// Made with qemu-img where it can create the format, by hand where it cannot (Bochs, cloop
/// and DMG, which qemu only reads).
async fn formats_qemu_probes_are_not_raw(backend: Backend) {
    // Every image is to be converted: none of these may reach the converter.
    let app = crate::conversion::converting_app(backend, "qcow2").await;
    let source = SourceServer::start().await;
    make_image(&source, "vdi.img", "vdi", &[]);
    make_image(&source, "parallels.img", "parallels", &[]);
    make_image(&source, "qed.img", "qed", &[]);
    make_image(&source, "qcow1.img", "qcow", &[]);
    make_image(
        &source,
        "luks.img",
        "luks",
        &[
            "--object",
            "secret,id=sec0,data=abc",
            "-o",
            "key-secret=sec0,iter-time=10",
        ],
    );
    let mut bochs = vec![0u8; 64 << 10];
    bochs[..22].copy_from_slice(b"Bochs Virtual HD Image");
    bochs[32..39].copy_from_slice(b"Redolog");
    bochs[48..55].copy_from_slice(b"Growing");
    bochs[64..68].copy_from_slice(&0x0002_0000u32.to_le_bytes());
    source.file("bochs.img", &bochs);
    let mut cloop =
        b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
            .to_vec();
    cloop.resize(64 << 10, 0);
    source.file("cloop.img", &cloop);
    let mut dmg = vec![0u8; 64 << 10];
    let trailer = dmg.len() - 512;
    dmg[trailer..trailer + 4].copy_from_slice(b"koly");
    dmg[trailer + 4..trailer + 8].copy_from_slice(&4u32.to_be_bytes());
    dmg[trailer + 8..trailer + 12].copy_from_slice(&512u32.to_be_bytes());
    source.file("dmg.img", &dmg);

    let cases = [
        ("vdi.img", unaccepted("VDI", "Raw")),
        ("parallels.img", unaccepted("Parallels", "Raw")),
        ("qed.img", unaccepted("QED", "Raw")),
        ("luks.img", unaccepted("LUKS-encrypted", "Raw")),
        ("bochs.img", unaccepted("Bochs", "Raw")),
        ("cloop.img", unaccepted("cloop", "Raw")),
        ("dmg.img", unaccepted("DMG", "Raw")),
        (
            "qcow1.img",
            "qcow2 version 1 is not supported; only versions 2 and 3 can be imported.".into(),
        ),
    ];
    for (name, expected) in cases {
        let url = source.url("files", name);
        assert_eq!(failure_reason(&app, &url).await, expected, "for {name}");
    }
    assert_eq!(
        app.services.importer().converter_processes_started(),
        0,
        "a refused image reached qemu-img"
    );
}

/// VMDK files that qemu would read differently from a careless check (CVE-2024-32498 and
/// relatives): each refused with its reason.
async fn vmdk_files_are_read_as_qemu_reads_them(backend: Backend) {
    // Every image is to be converted: none of these may reach the converter.
    let app = crate::conversion::converting_app(backend, "qcow2").await;
    let source = SourceServer::start().await;
    let sparse = make_image(&source, "base.vmdk", "vmdk", &[]);
    let descriptor_at = 512;
    let text = String::from_utf8_lossy(&sparse[descriptor_at..descriptor_at + 20 * 512])
        .trim_end_matches('\0')
        .to_owned();

    // A commented createType before the real one: qemu takes the first it finds.
    let ambiguous = text.replacen(
        "createType=",
        "# createType=\"monolithicFlat\"\ncreateType=",
        1,
    );
    let mut file = sparse.clone();
    file[descriptor_at..descriptor_at + ambiguous.len()].copy_from_slice(ambiguous.as_bytes());
    source.file("ambiguous.vmdk", &file);

    // Capacity 0: qemu opens the embedded descriptor as a descriptor file.
    let mut zero = sparse.clone();
    zero[12..20].copy_from_slice(&0u64.to_le_bytes());
    source.file("capacity-zero.vmdk", &zero);

    // A second extent that names a sibling file.
    let second = text.replacen(
        "\n\n# The Disk Data Base",
        "\nRW 2048 FLAT \"good.qcow2\" 0\n\n# The Disk Data Base",
        1,
    );
    assert_ne!(
        second, text,
        "qemu-img's descriptor has a Disk Data Base section"
    );
    let mut file = sparse.clone();
    file[descriptor_at..descriptor_at + second.len()].copy_from_slice(second.as_bytes());
    source.file("two-extents.vmdk", &file);

    // The descriptor, bare: as VMDK, and as a raw image.
    let bare = "# Disk DescriptorFile\nversion=1\n# createType=\"monolithicFlat\"\ncreateType=\"monolithicSparse\"\nRW 2048 FLAT \"good.qcow2\" 0\n";
    source.file("bare.vmdk", bare.as_bytes());
    source.file("bare.img", bare.as_bytes());
    // Without the comment line qemu still probes it as VMDK.
    source.file(
        "version-only.img",
        b"version=1\nRW 2048 FLAT \"good.qcow2\" 0\n",
    );

    let cases = [
        (
            "ambiguous.vmdk",
            "The VMDK descriptor names createType 2 times (comments included); it must name it exactly once, so that every reader sees the same type.",
        ),
        (
            "capacity-zero.vmdk",
            "The VMDK header states a capacity of 0, which makes qemu read its descriptor as a separate descriptor file; the image is refused.",
        ),
        (
            "two-extents.vmdk",
            "The VMDK descriptor must list exactly one extent, the image file itself (RW, SPARSE); other extents keep data in other files.",
        ),
        ("bare.vmdk", BARE_DESCRIPTOR),
        ("bare.img", BARE_DESCRIPTOR),
        ("version-only.img", BARE_DESCRIPTOR),
    ];
    for (name, expected) in cases {
        let url = source.url("files", name);
        assert_eq!(failure_reason(&app, &url).await, expected, "for {name}");
    }
    assert_eq!(
        app.services.importer().converter_processes_started(),
        0,
        "a refused image reached qemu-img"
    );
}

/// Files that are not the declared qcow2, or are unsafe in their own format, made with
/// qemu-img where it can make them and by hand where it cannot: each refused with its reason.
async fn every_bad_image_in_the_corpus_is_refused(backend: Backend) {
    // Every image is to be converted: none of these may reach the converter.
    let app = crate::conversion::converting_app(backend, "raw").await;
    let source = SourceServer::start().await;
    let mismatch = |detected: &str| {
        format!("The file is a {detected} image, not the qcow2 image it was declared to be.")
    };

    // Other formats, named .qcow2: the content decides.
    let vmdk = make_image(&source, "sparse.vmdk", "vmdk", &[]);
    source.file("vmdk.qcow2", &vmdk);
    make_image(&source, "vhd.qcow2", "vpc", &[]);
    make_image(&source, "vhdx.qcow2", "vhdx", &[]);
    make_image(&source, "raw.qcow2", "raw", &[]);
    make_image(&source, "qed.qcow2", "qed", &[]);
    make_image(
        &source,
        "luks.qcow2",
        "luks",
        &[
            "--object",
            "secret,id=sec0,data=abc",
            "-o",
            "key-secret=sec0,iter-time=10",
        ],
    );
    source.file("iso.qcow2", &iso_image());

    // A VMDK whose descriptor names a file outside it (CVE-2022-47951): qemu-img's own
    // descriptor, with the extent's file name replaced in place (the area is NUL-padded).
    let text = String::from_utf8_lossy(&vmdk[512..512 + 20 * 512]).into_owned();
    let extent = text
        .lines()
        .find(|l| l.starts_with("RW "))
        .unwrap()
        .to_owned();
    let outside = extent.replace("\"sparse.vmdk\"", "\"/etc/passwd\"");
    assert_ne!(extent, outside, "qemu-img names the extent after the file");
    let patched = text.replacen(&extent, &outside, 1);
    let mut escaping = vmdk.clone();
    escaping[512..512 + patched.len()].copy_from_slice(patched.as_bytes());
    source.file("escaping-vmdk.qcow2", &escaping);
    // A descriptor-only VMDK, whose data lives in another file.
    make_image(
        &source,
        "flat.vmdk",
        "vmdk",
        &["-o", "subformat=monolithicFlat"],
    );
    std::fs::copy(source.path("flat.vmdk"), source.path("flat-vmdk.qcow2")).unwrap();

    // A real qcow2 header hidden in an ISO's system area.
    let qcow2 = std::fs::read(source.qcow2("inner.qcow2", "16M")).unwrap();
    let mut hybrid = iso_image();
    hybrid[..512].copy_from_slice(&qcow2[..512]);
    source.file("hidden-in-iso.qcow2", &hybrid);

    let cases = [
        ("vmdk.qcow2", mismatch("VMDK")),
        ("vhd.qcow2", mismatch("VHD")),
        ("vhdx.qcow2", mismatch("VHDX")),
        ("iso.qcow2", mismatch("ISO")),
        (
            "raw.qcow2",
            "The file is not a qcow2 image: it does not start with the qcow2 signature.".into(),
        ),
        ("qed.qcow2", unaccepted("QED", "qcow2")),
        ("luks.qcow2", unaccepted("LUKS-encrypted", "qcow2")),
        (
            "escaping-vmdk.qcow2",
            "The VMDK descriptor points to a file outside the image (/etc/passwd); only self-contained images can be imported.".into(),
        ),
        ("flat-vmdk.qcow2", BARE_DESCRIPTOR.into()),
        (
            "hidden-in-iso.qcow2",
            "The file has both qcow2 and ISO headers; an image that hides one format inside another is refused.".into(),
        ),
    ];
    for (name, expected) in cases {
        let url = source.url("files", name);
        assert_eq!(failure_reason(&app, &url).await, expected, "for {name}");
    }
    assert_eq!(
        app.services.importer().converter_processes_started(),
        0,
        "a refused image reached qemu-img"
    );
}

/// Each format is accepted when the file's name declares it and the bytes agree; an ISO
/// becomes an installation image. Raw is the file as it is, GPT-partitioned or not.
async fn every_format_is_imported_when_its_name_declares_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let actor = app.sign_up("acme").await;
    make_image(&source, "sparse.vmdk", "vmdk", &[]);
    make_image(
        &source,
        "stream.vmdk",
        "vmdk",
        &["-o", "subformat=streamOptimized"],
    );
    make_image(&source, "dynamic.vhd", "vpc", &[]);
    make_image(&source, "disk.vhdx", "vhdx", &[]);
    make_image(&source, "plain.img", "raw", &[]);
    source.file("installer.iso", &iso_image());
    // A qcow2 named .img would be read as qcow2 by a hypervisor that probes: refused.
    std::fs::copy(
        source.qcow2("real.qcow2", "16M"),
        source.path("disguised.img"),
    )
    .unwrap();
    assert_eq!(
        failure_reason(&app, &source.url("files", "disguised.img")).await,
        "The file is a qcow2 image, not the Raw image it was declared to be."
    );
    let cases = [
        ("sparse.vmdk", DiskFormat::Vmdk, 16 << 20, "Image-Based"),
        ("stream.vmdk", DiskFormat::Vmdk, 16 << 20, "Image-Based"),
        ("dynamic.vhd", DiskFormat::Vhd, 16 << 20, "Image-Based"),
        ("disk.vhdx", DiskFormat::Vhdx, 16 << 20, "Image-Based"),
        ("plain.img", DiskFormat::Raw, 16 << 20, "Image-Based"),
        (
            "installer.iso",
            DiskFormat::Iso,
            100 * 2048,
            "Installation Image",
        ),
    ];
    for (name, format, virtual_size, image_type) in cases {
        let id = app
            .services
            .create_image(
                &actor,
                &create_form(&name.replace('.', "-"), &source.url("files", name)),
            )
            .await
            .unwrap();
        let image = app.wait_for_import(&actor, &id).await;
        assert_eq!(
            image.status,
            ImageStatus::Active,
            "{name}: {:?}",
            image.failure_reason
        );
        assert_eq!(image.disk_format, Some(format), "{name}");
        assert!(
            image.virtual_size_bytes.unwrap() >= virtual_size,
            "{name}: {:?}",
            image.virtual_size_bytes
        );
        assert_eq!(image.image_type, image_type, "{name}");
    }

    // And a name that says one format while the form says another is refused up front.
    let mut form = create_form("mismatch", &source.url("files", "installer.iso"));
    form.disk_format = "vmdk".into();
    let Err(ServiceError::Invalid(errors)) = app.services.create_image(&actor, &form).await else {
        panic!("a format that does not fit the name is refused");
    };
    assert_eq!(errors[0].field, "disk_format");
}

/// The checksum given on the Create form is verified against the bytes that arrived.
async fn creators_checksums_are_verified(backend: Backend) {
    use image_console::domain::checksum::ChecksumAlgorithm;
    use sha2::Digest;
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let bytes = std::fs::read(source.qcow2("disk.qcow2", "32M")).unwrap();
    let url = source.url("files", "disk.qcow2");
    let actor = app.sign_up("acme").await;
    let import = |checksum: String| {
        let app = &app;
        let actor = actor.clone();
        let url = url.clone();
        async move {
            let form = image_console::domain::image_spec::CreateImageForm {
                checksum,
                ..create_form("checked", &url)
            };
            let id = app.services.create_image(&actor, &form).await?;
            Ok::<_, ServiceError>(app.wait_for_import(&actor, &id).await)
        }
    };

    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let image = import(sha256.clone()).await.unwrap();
    assert_eq!(
        image.status,
        ImageStatus::Active,
        "{:?}",
        image.failure_reason
    );
    let expected = image.expected_checksum.unwrap();
    assert_eq!(
        (expected.algorithm, expected.hex),
        (ChecksumAlgorithm::Sha256, sha256)
    );

    let sha512 = hex::encode(sha2::Sha512::digest(&bytes)).to_ascii_uppercase();
    let image = import(format!("SHA512:{sha512}")).await.unwrap();
    assert_eq!(
        image.status,
        ImageStatus::Active,
        "{:?}",
        image.failure_reason
    );

    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&bytes))
    };
    let wrong = "0".repeat(32);
    let image = import(wrong.clone()).await.unwrap();
    assert_eq!(image.status, ImageStatus::Failed);
    assert_eq!(
        image.failure_reason.unwrap(),
        format!(
            "The file's MD5 checksum is {md5}, not the expected {wrong}; the file is not the one described."
        )
    );
    assert_eq!(
        app.stored_files().await.1,
        Vec::<String>::new(),
        "no staging bytes are left"
    );

    let before = crate::support::all_images(&app.services, &actor)
        .await
        .len();
    let Err(ServiceError::Invalid(errors)) = import("abc".into()).await else {
        panic!("a malformed checksum is a field error");
    };
    assert_eq!(errors[0].field, "checksum");
    assert_eq!(
        errors[0].message,
        "Checksum must be an MD5 (32), SHA-256 (64) or SHA-512 (128) hexadecimal digest (this one has 3 digits)."
    );
    assert_eq!(
        crate::support::all_images(&app.services, &actor)
            .await
            .len(),
        before
    );
}

async fn imports_over_the_size_limit_fail(backend: Backend) {
    let mut settings = test_settings();
    settings.import_size_limit_bytes = 100 * 1024;
    let app = TestApp::spawn_with(backend, settings).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("big.qcow2", "1G");
    qemu_img(&["resize", "-q", file.to_str().unwrap(), "64G"]);
    // Pad the file past the limit (qcow2 tolerates trailing bytes for this test's purpose).
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.resize(300 * 1024, 0);
    source.file("big.qcow2", &bytes);
    // With Content-Length the limit is applied before any byte is stored...
    assert_eq!(
        failure_reason(&app, &source.url("files", "big.qcow2")).await,
        "The image file is 300 KB, larger than the import limit of 100 KB."
    );
}

async fn invalid_forms_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let actor = app.sign_up("acme").await;
    let mut form = create_form("bad#name", "ftp://example.com/x.qcow2");
    form.attributes.min_disk = "12289".into();
    form.attributes.min_ram = "2097152".into();
    let error = app.services.create_image(&actor, &form).await.unwrap_err();
    let ServiceError::Invalid(errors) = error else {
        panic!("expected validation errors")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "source_url", "min_disk", "min_ram"]);
    assert_eq!(
        errors[2].message,
        "Minimum Disk must be between 0 and 12,288 GB."
    );
    assert!(
        crate::support::all_images(&app.services, &actor)
            .await
            .is_empty()
    );
}

async fn protected_images_cannot_be_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    source.qcow2("disk.qcow2", "16M");
    let actor = app.sign_up("acme").await;
    let mut form = create_form("keep me", &source.url("files", "disk.qcow2"));
    form.attributes.protected = Some("on".into());
    let id = app.services.create_image(&actor, &form).await.unwrap();
    app.wait_for_import(&actor, &id).await;

    let error = app.services.delete_image(&actor, &id).await.unwrap_err();
    let ServiceError::Conflict(reason) = error else {
        panic!("expected a conflict, got {error:?}")
    };
    assert!(reason.starts_with("This image is Protected."), "{reason}");
    assert_eq!(app.stored_files().await.0, vec![id.clone()]);

    app.services
        .set_image_protected(&actor, &id, false)
        .await
        .unwrap();
    let image = app.services.get_image(&actor, &id).await.unwrap();
    assert!(!image.attributes.protected);
    assert_eq!(image.updated_by, "admin@acme");
    // To the Recycle Bin with its bytes; Destroy removes both.
    app.services.delete_image(&actor, &id).await.unwrap();
    let binned = app.services.get_image(&actor, &id).await.unwrap();
    assert_eq!(binned.status, ImageStatus::Deleted);
    assert_eq!(app.stored_files().await.0, vec![id.clone()]);
    app.services
        .destroy_images(&actor, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(matches!(
        app.services.get_image(&actor, &id).await,
        Err(ServiceError::NotFound(_))
    ));
    assert_eq!(app.stored_files().await, (vec![], vec![]));
}

async fn cancel_import_stops_the_import_before_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("slow.qcow2", "1G");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.resize(2 << 20, 0);
    source.file("slow.qcow2", &bytes);
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("slow", &source.url("slow", "slow.qcow2")),
        )
        .await
        .unwrap();
    app.wait_until(&actor, &id, |i| {
        i.progress.is_some_and(|p| p.bytes_done > 0)
    })
    .await;
    // Delete waits for the import to be cancelled, and says so.
    let refused = app.services.delete_image(&actor, &id).await.unwrap_err();
    assert!(
        matches!(&refused, ServiceError::Conflict(m) if m.contains("Cancel Import")),
        "{refused:?}"
    );
    app.services.cancel_import(&actor, &id).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.services.importer().is_idle() {
        assert!(
            std::time::Instant::now() < deadline,
            "import kept running after Cancel Import"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let cancelled = app.services.get_image(&actor, &id).await.unwrap();
    assert_eq!(cancelled.status, ImageStatus::Failed);
    assert_eq!(
        cancelled.failure_reason.as_deref(),
        Some("The import was cancelled by admin@acme.")
    );
    assert_eq!(app.stored_files().await, (vec![], vec![]));
    app.services.delete_image(&actor, &id).await.unwrap();
    app.services
        .destroy_images(&actor, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(
        crate::support::all_images(&app.services, &actor)
            .await
            .is_empty()
    );
}

async fn progress_is_reported_while_importing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = SourceServer::start().await;
    let file = source.qcow2("slow.qcow2", "1G");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.resize(1 << 20, 0);
    source.file("slow.qcow2", &bytes);
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("slow", &source.url("slow", "slow.qcow2")),
        )
        .await
        .unwrap();
    let midway = app
        .wait_until(&actor, &id, |i| {
            i.progress
                .is_some_and(|p| p.bytes_done > 0 && p.bytes_done < 1 << 20)
        })
        .await;
    assert_eq!(midway.status, ImageStatus::Importing);
    assert_eq!(midway.progress.unwrap().bytes_total, Some(1 << 20));
    let list = crate::support::all_images(&app.services, &actor).await;
    assert_eq!(list[0].status, ImageStatus::Importing);
    assert!(list[0].progress.is_some());
    let done = app.wait_for_import(&actor, &id).await;
    assert_eq!(
        done.status,
        ImageStatus::Active,
        "{:?}",
        done.failure_reason
    );
    assert_eq!(done.progress, None);
}

/// A source that trickles (10 KiB/s against a minimum of 64 KiB/s over each second) ends the
/// import Failed with the reason, instead of holding an import slot for ever.
async fn a_trickling_source_fails_as_too_slow(backend: Backend) {
    let mut settings = test_settings();
    settings.limits.import_min_bytes_per_second = 64 << 10;
    settings.limits.import_min_speed_window = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(backend, settings).await;
    let source = SourceServer::start().await;
    source.qcow2("crawling.qcow2", "64M");
    let actor = app.sign_up("acme").await;
    let id = app
        .services
        .create_image(
            &actor,
            &create_form("crawling", &source.url("crawl", "crawling.qcow2")),
        )
        .await
        .unwrap();
    let image = app.wait_for_import(&actor, &id).await;
    assert_eq!(image.status, ImageStatus::Failed);
    let reason = image.failure_reason.unwrap();
    assert!(
        reason.starts_with("The source sent too slowly: ")
            && reason.ends_with(" in the last second, under the minimum of 64 KB/s."),
        "{reason}"
    );
    assert_eq!(app.stored_files().await, (vec![], vec![]));
}

/// Imports of unknown length reserve storage as they stream, one after the other, so
/// together they never take the account past its quota: the ones that would are Failed.
async fn concurrent_chunked_imports_stay_within_the_quota(backend: Backend) {
    const QUOTA: u64 = 40 << 20;
    let mut settings = test_settings();
    settings.max_storage_bytes_per_account = QUOTA;
    settings.import_concurrency = 4;
    settings.limits.imports_per_account = 4;
    let app = TestApp::spawn_with(backend, settings).await;
    let source = SourceServer::start().await;
    let actor = app.sign_up("acme").await;
    let bytes: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    source.file("disk.img", &bytes);
    let mut ids = Vec::new();
    for n in 0..4 {
        let mut form = create_form(&format!("chunked {n}"), &source.url("chunked", "disk.img"));
        form.attributes.os_family = "linux".into();
        form.attributes.os_platform = "ubuntu".into();
        ids.push(app.services.create_image(&actor, &form).await.unwrap());
    }
    // While they stream, the account's usage (reservations included) never passes the quota.
    let mut peak = 0;
    while !app.services.importer().is_idle() {
        let usage = app.services.account_usage(&actor).await.unwrap();
        peak = peak.max(usage.stored_bytes);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(peak <= QUOTA, "usage reached {peak} of {QUOTA}");
    let mut active = 0;
    for id in &ids {
        let image = app.wait_for_import(&actor, id).await;
        match image.status {
            ImageStatus::Active => active += 1,
            ImageStatus::Failed => {
                let reason = image.failure_reason.unwrap();
                assert!(reason.starts_with("Storage quota exceeded: "), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        active, 2,
        "two 16 MiB images fit in 40 MiB, a third does not"
    );
    let usage = app.services.account_usage(&actor).await.unwrap();
    assert_eq!(usage.stored_bytes, 32 << 20);
}

/// One account's imports take at most `imports_per_account` slots; another account's import
/// runs beside them rather than waiting behind them.
async fn one_account_cannot_take_every_import_slot(backend: Backend) {
    let mut settings = test_settings();
    settings.import_concurrency = 3;
    settings.limits.imports_per_account = 1;
    let app = TestApp::spawn_with(backend, settings).await;
    let source = SourceServer::start().await;
    // 2 MiB at the slow route's 800 KiB/s: each import lasts a few seconds.
    source.file("slow.img", &vec![7u8; 2 << 20]);
    let url = source.url("slow", "slow.img");
    let busy = app.sign_up("busy").await;
    let other = app.sign_up("other").await;
    let first = app
        .services
        .create_image(&busy, &create_form("first", &url))
        .await
        .unwrap();
    let second = app
        .services
        .create_image(&busy, &create_form("second", &url))
        .await
        .unwrap();
    let theirs = app
        .services
        .create_image(&other, &create_form("theirs", &url))
        .await
        .unwrap();
    app.wait_until(&busy, &first, |i| i.status == ImageStatus::Importing)
        .await;
    app.wait_until(&other, &theirs, |i| i.status == ImageStatus::Importing)
        .await;
    let waiting = app.services.get_image(&busy, &second).await.unwrap();
    assert_eq!(
        waiting.status,
        ImageStatus::Queued,
        "the account's second import waits for its first, though a server slot is free"
    );
    for (actor, id) in [(&busy, &first), (&busy, &second), (&other, &theirs)] {
        let done = app.wait_for_import(actor, id).await;
        assert_eq!(
            done.status,
            ImageStatus::Active,
            "{:?}",
            done.failure_reason
        );
    }
}

crate::on_every_backend!(
    a_trickling_source_fails_as_too_slow,
    concurrent_chunked_imports_stay_within_the_quota,
    one_account_cannot_take_every_import_slot,
    creators_checksums_are_verified,
    every_format_is_imported_when_its_name_declares_it,
    every_bad_image_in_the_corpus_is_refused,
    formats_qemu_probes_are_not_raw,
    vmdk_files_are_read_as_qemu_reads_them,
    import_makes_an_active_image_with_hashes,
    import_failures_say_why,
    imports_over_the_size_limit_fail,
    invalid_forms_change_nothing,
    protected_images_cannot_be_deleted,
    cancel_import_stops_the_import_before_delete,
    progress_is_reported_while_importing,
);
