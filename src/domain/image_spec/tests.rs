use super::*;
use crate::domain::attributes::{Architecture, BootMode};
use crate::domain::os_catalogue::{OsFamily, OsPlatform, OsRequirement};
use crate::domain::tags::TagPair;

#[test]
fn image_name_boundaries() {
    assert!(ImageName::parse("a").is_ok());
    assert!(ImageName::parse(&"a".repeat(255)).is_ok());
    let too_long = ImageName::parse(&"a".repeat(256)).unwrap_err();
    assert_eq!(too_long.field, "name");
    assert_eq!(
        too_long.message,
        "Image name must be at most 255 characters (it has 256)."
    );
    assert_eq!(
        ImageName::parse("").unwrap_err().message,
        "Enter an image name."
    );
}

#[test]
fn image_name_allowed_characters() {
    assert!(ImageName::parse("Ubuntu 24_04-base").is_ok());
    assert!(ImageName::parse("ABCxyz0123456789").is_ok());
}

#[test]
fn image_name_refuses_each_forbidden_character() {
    for c in "!\"#$%&'()*+,./:;<=>?@[\\]^`{|}~\t\n".chars() {
        let name = format!("img{c}x");
        let error = ImageName::parse(&name).unwrap_err();
        assert!(
            error.message.starts_with("Image name can contain only"),
            "{c:?} gave {error}"
        );
    }
    for s in ["é", "日本", "x\u{200b}"] {
        assert!(ImageName::parse(s).is_err(), "{s} should be refused");
    }
    assert_eq!(
        ImageName::parse("a#b").unwrap_err().message,
        "Image name can contain only English letters, digits, spaces, '-' and '_' (found '#')."
    );
}

#[test]
fn image_name_cannot_start_or_end_with_space() {
    assert!(ImageName::parse(" x").is_err());
    assert!(ImageName::parse("x ").is_err());
    assert!(ImageName::parse(" ").is_err());
    assert!(ImageName::parse("x y").is_ok());
}

#[test]
fn a_name_of_255_multibyte_chars_is_counted_in_characters() {
    // Counting bytes instead of characters would accept or refuse the wrong lengths.
    let error = ImageName::parse(&"é".repeat(10)).unwrap_err();
    assert!(error.message.contains("found 'é'"));
}

#[test]
fn image_file_url_accepts_http_and_https_qcow2() {
    for ok in [
        "https://example.com/images/ubuntu.qcow2",
        "http://10.0.0.5:8080/a/b/c.QCOW2",
        "https://bucket.s3.example.com/x.qcow2?X-Amz-Signature=abc",
    ] {
        assert!(ImageFileUrl::parse(ok).is_ok(), "{ok}");
    }
}

#[test]
fn image_file_url_refuses_bad_urls() {
    let cases = [
        ("", "Enter the URL of the image file."),
        ("not a url", "Image file URL cannot contain spaces."),
        (
            "example.com/x.qcow2",
            "Image file URL is not a valid URL; it should look like https://host/path/image.qcow2.",
        ),
        (
            "ftp://example.com/x.qcow2",
            "Image file URL must start with http:// or https://.",
        ),
        (
            "file:///etc/x.qcow2",
            "Image file URL must start with http:// or https://.",
        ),
        (
            "javascript:alert(1)//x.qcow2",
            "Image file URL must start with http:// or https://.",
        ),
        (
            "https://user:pw@example.com/x.qcow2",
            "Image file URL cannot contain a user name or password.",
        ),
        (
            "https://example.com/x.exe",
            "Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).",
        ),
        (
            "https://example.com/x.qcow2/",
            "Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).",
        ),
        (
            "https://example.com/?f=x.qcow2",
            "Image file URL must point to a disk image file (.qcow2, .raw, .img, .vmdk, .vhd, .vhdx or .iso).",
        ),
    ];
    for (raw, message) in cases {
        let error = ImageFileUrl::parse(raw).unwrap_err();
        assert_eq!(error.field, "source_url");
        assert_eq!(error.message, message, "for {raw:?}");
    }
    let long = format!("https://example.com/{}.qcow2", "a".repeat(2048));
    assert_eq!(
        ImageFileUrl::parse(&long).unwrap_err().message,
        "Image file URL must be at most 2,048 characters."
    );
}

#[test]
fn image_file_url_file_name() {
    let url = ImageFileUrl::parse("https://example.com/a/ubuntu-24.qcow2?sig=1").unwrap();
    assert_eq!(url.file_name(), "ubuntu-24.qcow2");
}

#[test]
fn min_disk_boundaries() {
    assert_eq!(MinDiskGb::parse("0").unwrap().get(), 0);
    assert_eq!(MinDiskGb::parse("12288").unwrap().get(), 12_288);
    let over = MinDiskGb::parse("12289").unwrap_err();
    assert_eq!(over.field, "min_disk");
    assert_eq!(
        over.message,
        "Minimum Disk must be between 0 and 12,288 GB."
    );
    for bad in ["-1", "1.5", "1e3", " 1", "abc", "99999999999999999999999"] {
        assert!(MinDiskGb::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        MinDiskGb::parse("").unwrap_err().message,
        "Enter Minimum Disk in GB, between 0 and 12,288 GB."
    );
}

#[test]
fn min_ram_boundaries() {
    assert_eq!(MinRamGb::parse("2097151").unwrap().get(), 2_097_151);
    let over = MinRamGb::parse("2097152").unwrap_err();
    assert_eq!(over.field, "min_ram");
    assert_eq!(
        over.message,
        "Minimum RAM must be between 0 and 2,097,151 GB."
    );
    assert_eq!(
        MinRamGb::parse("-5").unwrap_err().message,
        "Minimum RAM must be a whole number of GB, between 0 and 2,097,151 GB."
    );
}

#[test]
fn description_boundaries() {
    assert!(Description::parse("").is_ok());
    assert!(Description::parse(&"d".repeat(255)).is_ok());
    assert_eq!(
        Description::parse(&"d".repeat(256)).unwrap_err().message,
        "Description must be at most 255 characters (it has 256)."
    );
    assert_eq!(
        Description::parse("two\nlines").unwrap_err().message,
        "Description cannot contain the control character U+000A."
    );
    assert!(Description::parse("Ünïcödé and symbols #!@ are fine").is_ok());
}

#[test]
fn visibility_values() {
    assert_eq!(Visibility::parse("private"), Ok(Visibility::Private));
    assert_eq!(Visibility::parse("shared"), Ok(Visibility::Shared));
    assert!(Visibility::parse("public").is_err());
}

#[test]
fn form_reports_every_error_at_once() {
    let form = CreateImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "bad#name".into(),

            min_disk: "12289".into(),
            min_ram: "x".into(),
            protected: None,
            description: "d".repeat(256),
            ..Default::default()
        },
        source_url: "ftp://x/y.qcow2".into(),
        visibility: "public".into(),
        ..Default::default()
    };
    let errors = form.parse(1 << 30).unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "source_url",
            "os_family",
            "os_platform",
            "min_disk",
            "min_ram",
            "visibility",
            "description"
        ]
    );
}

#[test]
fn form_parses_a_valid_request() {
    let form = CreateImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "ubuntu base".into(),
            os_family: "linux".into(),
            os_platform: "ubuntu".into(),
            min_disk: "10".into(),
            min_ram: "2".into(),
            protected: Some("on".into()),
            description: "".into(),
            cloud_init: Some("on".into()),
            ..Default::default()
        },
        source_url: "https://example.com/u.qcow2".into(),
        visibility: "private".into(),
        tags: vec![TagPair {
            key: "env".into(),
            value: "prod".into(),
        }],
        ..Default::default()
    };
    let spec = form.parse(1 << 30).unwrap();
    assert!(spec.attributes.protected);
    assert_eq!(spec.attributes.min_disk_gb, 10);
    assert_eq!(
        spec.attributes.os.as_ref().unwrap().platform,
        OsPlatform::Ubuntu
    );
    assert_eq!(spec.attributes.os.as_ref().unwrap().version, None);
    assert_eq!(spec.attributes.architecture, Architecture::X86_64);
    assert_eq!(spec.attributes.boot_mode, BootMode::Bios);
    assert!(spec.attributes.features.cloud_init);
    assert!(!spec.attributes.features.qemu_guest_agent);
    assert_eq!(spec.tags.len(), 1);
}

#[test]
fn the_disk_format_must_fit_the_file_name() {
    let form = CreateImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "installer".into(),
            os_family: "linux".into(),
            os_platform: "ubuntu".into(),
            min_disk: "10".into(),
            min_ram: "1".into(),
            ..Default::default()
        },
        source_url: "https://example.com/ubuntu-24.04-live.iso".into(),
        visibility: "private".into(),
        ..Default::default()
    };
    // Without a Disk format, the file's name declares it.
    assert_eq!(form.parse(1 << 30).unwrap().disk_format, DiskFormat::Iso);
    let qcow2 = CreateImageForm {
        disk_format: "qcow2".into(),
        ..form.clone()
    };
    let errors = qcow2.parse(1 << 30).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "disk_format");
    assert_eq!(
        errors[0].message,
        "ubuntu-24.04-live.iso ends in .iso, the ending of ISO files; choose Disk format ISO or another file."
    );
    let unknown = CreateImageForm {
        disk_format: "qed".into(),
        ..form
    };
    assert_eq!(
        unknown.parse(1 << 30).unwrap_err()[0].message,
        "Choose one of the listed disk formats."
    );
    assert!(check_format_fits_file(DiskFormat::Raw, "disk.img").is_ok());
    assert!(check_format_fits_file(DiskFormat::Raw, "disk.raw").is_ok());
    assert!(check_format_fits_file(DiskFormat::Vhd, "disk.vhdx").is_err());
}

#[test]
fn a_local_file_source_needs_a_file_not_a_url() {
    let form = CreateImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "from disk".into(),
            os_family: "linux".into(),
            os_platform: "rocky".into(),
            min_disk: "10".into(),
            min_ram: "1".into(),
            ..Default::default()
        },
        source: "file".into(),
        file_name: "disk.qcow2".into(),
        file_size: "4096".into(),
        visibility: "private".into(),
        ..Default::default()
    };
    let spec = form.parse(1 << 30).unwrap();
    assert_eq!(
        spec.source,
        ImageSource::LocalFile(LocalImageFile::parse("disk.qcow2", "4096", 1 << 30).unwrap())
    );
    let too_big = form.parse(4095).unwrap_err();
    assert_eq!(too_big.len(), 1);
    assert_eq!(too_big[0].field, "local_file");
    let no_file = CreateImageForm {
        file_name: String::new(),
        ..form.clone()
    };
    assert_eq!(no_file.parse(1 << 30).unwrap_err()[0].field, "local_file");
    let unknown = CreateImageForm {
        source: "ftp".into(),
        ..form
    };
    assert_eq!(
        unknown.parse(1 << 30).unwrap_err()[0].message,
        "Choose Image file URL or Local file."
    );
}

#[test]
fn edit_form_uses_the_same_rules() {
    let form = EditImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "bad#name".into(),
            os_family: "linux".into(),
            os_platform: "ubuntu".into(),
            min_disk: "12289".into(),
            min_ram: "0".into(),
            architecture: "sparc".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let errors = form.parse(OsRequirement::Required).unwrap_err();
    let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Image name can contain only English letters, digits, spaces, '-' and '_' (found '#').",
            "Minimum Disk must be between 0 and 12,288 GB.",
            "Architecture must be x86_64 or aarch64.",
        ]
    );
    let ok = EditImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "renamed".into(),
            os_family: "linux".into(),
            os_platform: "rhel".into(),
            min_disk: "1".into(),
            min_ram: "1".into(),
            architecture: "aarch64".into(),
            boot_mode: "uefi".into(),
            qemu_guest_agent: Some("on".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let edit = ok.parse(OsRequirement::Required).unwrap();
    assert_eq!(
        edit.visibility, None,
        "an empty visibility keeps the current one"
    );
    let attributes = edit.attributes;
    assert_eq!(attributes.architecture, Architecture::Aarch64);
    assert_eq!(attributes.boot_mode, BootMode::Uefi);
    assert!(attributes.features.qemu_guest_agent);
    assert!(!attributes.protected);
    let shared = EditImageForm {
        visibility: "shared".into(),
        ..ok.clone()
    };
    assert_eq!(
        shared.parse(OsRequirement::Required).unwrap().visibility,
        Some(Visibility::Shared)
    );
    let bad = EditImageForm {
        visibility: "public".into(),
        ..ok
    };
    assert_eq!(
        bad.parse(OsRequirement::Required).unwrap_err()[0].message,
        "Visibility must be Private or Shared."
    );
}

#[test]
fn create_form_checks_its_tags() {
    let form = CreateImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "n".into(),
            os_family: "linux".into(),
            os_platform: "ubuntu".into(),
            min_disk: "0".into(),
            min_ram: "0".into(),
            ..Default::default()
        },
        source_url: "https://example.com/a.qcow2".into(),
        visibility: "private".into(),
        tags: vec![
            TagPair {
                key: "env".into(),
                value: "a".into(),
            },
            TagPair {
                key: "env".into(),
                value: "b".into(),
            },
        ],
        ..Default::default()
    };
    let errors = form.parse(1 << 30).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "tag_key.1");
}

#[test]
fn the_operating_system_fields_are_checked_together() {
    let form = |family: &str, platform: &str, version: &str, arch: &str| EditImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "n".into(),
            os_family: family.into(),
            os_platform: platform.into(),
            os_version: version.into(),
            architecture: arch.into(),
            min_disk: "0".into(),
            min_ram: "0".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let edit = form("windows", "windows-server", "2019", "x86_64")
        .parse(OsRequirement::Required)
        .unwrap();
    assert_eq!(
        edit.attributes.os.as_ref().unwrap().family(),
        OsFamily::Windows
    );
    assert_eq!(
        edit.attributes.os.as_ref().unwrap().label(),
        "Windows Server 2019"
    );
    // The form an image's attributes fill in parses back to them.
    let again = EditImageForm {
        attributes: AttributesForm::of(&edit.attributes),
        ..Default::default()
    };
    assert_eq!(
        again.parse(OsRequirement::Required).unwrap().attributes,
        edit.attributes
    );

    let errors = form("linux", "centos", "7.2", "aarch64")
        .parse(OsRequirement::Required)
        .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "os_version");
    assert_eq!(
        errors[0].message,
        "System version 7.2 of CentOS is not offered for aarch64; choose one of 7.6–7.9."
    );
    // A wrong architecture is its own error; the version is not judged against it.
    let errors = form("linux", "centos", "7.2", "sparc")
        .parse(OsRequirement::Required)
        .unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["architecture"]);
}

#[test]
fn work_history_names_each_operating_system_field() {
    let parse = |platform: &str, version: &str| {
        EditImageForm {
            attributes: crate::domain::image_spec::AttributesForm {
                name: "n".into(),
                os_family: if platform.starts_with("windows") {
                    "windows"
                } else {
                    "linux"
                }
                .into(),
                os_platform: platform.into(),
                os_version: version.into(),
                min_disk: "0".into(),
                min_ram: "0".into(),
                ..Default::default()
            },
            ..Default::default()
        }
        .parse(OsRequirement::Required)
        .unwrap()
        .attributes
    };
    let changes = parse("ubuntu", "").changes_to(&parse("windows", "10"));
    let described: Vec<_> = changes
        .iter()
        .map(|c| format!("{}: {} → {}", c.field, c.old, c.new))
        .collect();
    assert_eq!(
        described,
        [
            "Operating system: Linux → Windows",
            "System platform: Ubuntu → Windows",
            "System version: Not specified → 10",
        ]
    );
}

#[test]
fn edit_may_leave_an_unspecified_operating_system_unspecified() {
    let form = EditImageForm {
        attributes: crate::domain::image_spec::AttributesForm {
            name: "from-the-api".into(),
            min_disk: "0".into(),
            min_ram: "0".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        form.parse(OsRequirement::Optional).unwrap().attributes.os,
        None
    );
    // Once set, it stays set: clearing it asks for it again.
    let errors = form.parse(OsRequirement::Required).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["os_family", "os_platform"]);
    // Create Image always asks for it.
    let create = CreateImageForm {
        attributes: form.attributes.clone(),
        source_url: "https://example.com/a.qcow2".into(),
        visibility: "private".into(),
        ..Default::default()
    };
    let errors = create.parse(1 << 30).unwrap_err();
    assert_eq!(
        errors[0].message,
        "Select an operating system: Linux or Windows."
    );
}
