// Over 800 lines: the catalogue is data (every platform's versions) and the filters and labels
// that read it, 580 lines before the tests.
//! The operating systems an image can hold: the family (Linux or Windows), its platforms, and
//! each platform's versions by architecture, as the import guides list them (with the current
//! releases they predate). The Create and Edit forms, the server, the Image List's filters, the
//! CSV export and the image API all read this one catalogue.

use serde::{Deserialize, Serialize};

use super::attributes::Architecture;
use super::validation::{FieldError, or_list};

/// Form field names.
pub mod field {
    pub const OS_FAMILY: &str = "os_family";
    pub const OS_PLATFORM: &str = "os_platform";
    pub const OS_VERSION: &str = "os_version";
}

/// Field labels, as the forms, Image Details, Work History and the CSV export name them.
pub mod label {
    pub const OS_FAMILY: &str = "Operating system";
    pub const OS_PLATFORM: &str = "System platform";
    pub const OS_VERSION: &str = "System version";
}

/// What the list, Image Details and the CSV export show for an operating system, platform
/// or version nobody has set.
pub const NOT_SPECIFIED: &str = "Not specified";

/// What Image Details and the CSV export show for an image without a version.
pub const NO_VERSION: &str = NOT_SPECIFIED;

/// What the database's `os_type` holds for an image without an operating system (the image
/// API creates such images, as Glance needs no OS property).
pub const UNSPECIFIED_OS_TYPE: &str = "";

/// Whether a form must name an operating system. Create Image always does, as the guides
/// ask; Edit does once the image has one, so an image the API created without one can still
/// be edited before its owner sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsRequirement {
    Required,
    Optional,
}

impl OsRequirement {
    /// The rule for editing an image whose operating system is `current`.
    pub fn to_edit(current: Option<&OperatingSystem>) -> Self {
        if current.is_some() {
            OsRequirement::Required
        } else {
            OsRequirement::Optional
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OsFamily {
    Linux,
    Windows,
}

impl OsFamily {
    pub const ALL: [OsFamily; 2] = [OsFamily::Linux, OsFamily::Windows];

    /// The stable value the forms send (Glance's `os_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            OsFamily::Linux => "linux",
            OsFamily::Windows => "windows",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OsFamily::Linux => "Linux",
            OsFamily::Windows => "Windows",
        }
    }

    pub fn platforms(self) -> impl Iterator<Item = OsPlatform> {
        OsPlatform::ALL
            .into_iter()
            .filter(move |p| p.family() == self)
    }

    /// The family a value names, if any.
    pub fn from_value(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: &str| Err(FieldError::new(field::OS_FAMILY, m));
        match raw {
            "" => err("Select an operating system: Linux or Windows."),
            raw => Self::from_value(raw)
                .map_or_else(|| err("Operating system must be Linux or Windows."), Ok),
        }
    }
}

/// A system platform: a Linux distribution, or Windows for servers or desktops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OsPlatform {
    Alma,
    CentOS,
    Oracle,
    Rhel,
    Rocky,
    Ubuntu,
    WindowsServer,
    Windows,
}

/// One release of a platform and the architectures it is offered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: &'static str,
    pub architectures: &'static [Architecture],
}

const X86_64: &[Architecture] = &[Architecture::X86_64];
const AARCH64: &[Architecture] = &[Architecture::Aarch64];
const BOTH: &[Architecture] = &[Architecture::X86_64, Architecture::Aarch64];

const fn release(version: &'static str, architectures: &'static [Architecture]) -> Release {
    Release {
        version,
        architectures,
    }
}

/// CentOS: 6.5–6.10 and 7.0–7.9 on x86_64, 7.6–7.9 on aarch64.
const CENTOS: &[Release] = &[
    release("6.5", X86_64),
    release("6.6", X86_64),
    release("6.7", X86_64),
    release("6.8", X86_64),
    release("6.9", X86_64),
    release("6.10", X86_64),
    release("7.0", X86_64),
    release("7.1", X86_64),
    release("7.2", X86_64),
    release("7.3", X86_64),
    release("7.4", X86_64),
    release("7.5", X86_64),
    release("7.6", BOTH),
    release("7.7", BOTH),
    release("7.8", BOTH),
    release("7.9", BOTH),
];

/// Ubuntu: 14.04 and 20.10 on x86_64, 16.04 and 18.04 on aarch64, and the current LTS
/// releases on both.
const UBUNTU: &[Release] = &[
    release("14.04", X86_64),
    release("16.04", AARCH64),
    release("18.04", AARCH64),
    release("20.10", X86_64),
    release("22.04", BOTH),
    release("24.04", BOTH),
];

/// The Enterprise Linux rebuilds and RHEL: the current major releases.
const ENTERPRISE_LINUX: &[Release] = &[release("8", BOTH), release("9", BOTH)];

const WINDOWS_SERVER: &[Release] = &[
    release("2008", X86_64),
    release("2008 R2", X86_64),
    release("2012", X86_64),
    release("2012 R2", X86_64),
    release("2016", X86_64),
    release("2019", X86_64),
    release("2022", X86_64),
    release("2025", X86_64),
];

const WINDOWS: &[Release] = &[
    release("7", X86_64),
    release("8", X86_64),
    release("8.1", X86_64),
    release("10", X86_64),
    release("11", X86_64),
];

impl OsPlatform {
    pub const ALL: [OsPlatform; 8] = [
        OsPlatform::Alma,
        OsPlatform::CentOS,
        OsPlatform::Oracle,
        OsPlatform::Rhel,
        OsPlatform::Rocky,
        OsPlatform::Ubuntu,
        OsPlatform::WindowsServer,
        OsPlatform::Windows,
    ];

    /// The stable value stored in the database, sent by the forms and given as the image
    /// API's `os_distro`.
    pub fn as_str(self) -> &'static str {
        match self {
            OsPlatform::Alma => "alma",
            OsPlatform::CentOS => "centos",
            OsPlatform::Oracle => "oracle",
            OsPlatform::Rhel => "rhel",
            OsPlatform::Rocky => "rocky",
            OsPlatform::Ubuntu => "ubuntu",
            OsPlatform::WindowsServer => "windows-server",
            OsPlatform::Windows => "windows",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OsPlatform::Alma => "Alma Linux",
            OsPlatform::CentOS => "CentOS",
            OsPlatform::Oracle => "Oracle Linux",
            OsPlatform::Rhel => "RHEL",
            OsPlatform::Rocky => "Rocky Linux",
            OsPlatform::Ubuntu => "Ubuntu",
            OsPlatform::WindowsServer => "Windows Server",
            OsPlatform::Windows => "Windows",
        }
    }

    pub fn family(self) -> OsFamily {
        match self {
            OsPlatform::WindowsServer | OsPlatform::Windows => OsFamily::Windows,
            _ => OsFamily::Linux,
        }
    }

    /// Every release, oldest first.
    pub fn releases(self) -> &'static [Release] {
        match self {
            OsPlatform::CentOS => CENTOS,
            OsPlatform::Ubuntu => UBUNTU,
            OsPlatform::Alma | OsPlatform::Oracle | OsPlatform::Rhel | OsPlatform::Rocky => {
                ENTERPRISE_LINUX
            }
            OsPlatform::WindowsServer => WINDOWS_SERVER,
            OsPlatform::Windows => WINDOWS,
        }
    }

    /// The versions offered for `architecture`, oldest first.
    pub fn versions_for(self, architecture: Architecture) -> Vec<&'static str> {
        self.releases()
            .iter()
            .filter(|r| r.architectures.contains(&architecture))
            .map(|r| r.version)
            .collect()
    }

    /// The architectures at least one release is offered for.
    pub fn architectures(self) -> Vec<Architecture> {
        Architecture::ALL
            .into_iter()
            .filter(|a| !self.versions_for(*a).is_empty())
            .collect()
    }

    /// The platform a value names, if any.
    pub fn from_value(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: String| Err(FieldError::new(field::OS_PLATFORM, m));
        match raw {
            "" => err("Select a system platform.".into()),
            raw => Self::from_value(raw).map_or_else(
                || {
                    err(format!(
                        "System platform must be one of {}.",
                        or_list(&Self::ALL.map(|p| p.label()))
                    ))
                },
                Ok,
            ),
        }
    }

    /// The platform, if it belongs to `family` and is offered for `architecture`. An unknown
    /// family or architecture is that field's error, so it is not checked here.
    pub fn check(
        raw: &str,
        family: Option<OsFamily>,
        architecture: Option<Architecture>,
    ) -> Result<Self, FieldError> {
        let platform = Self::parse(raw)?;
        let err = |m: String| Err(FieldError::new(field::OS_PLATFORM, m));
        if let Some(family) = family.filter(|f| *f != platform.family()) {
            let others: Vec<&str> = family.platforms().map(|p| p.label()).collect();
            return err(format!(
                "System platform {} is a {} platform; choose Operating system {} or a {} platform ({}).",
                platform.label(),
                platform.family().label(),
                platform.family().label(),
                family.label(),
                or_list(&others)
            ));
        }
        let offered_on = platform.architectures();
        if let Some(architecture) = architecture
            && !offered_on.contains(&architecture)
        {
            let offered: Vec<&str> = offered_on.iter().map(|a| a.as_str()).collect();
            return err(format!(
                "System platform {} is offered for {} only; choose Architecture {}.",
                platform.label(),
                or_list(&offered),
                or_list(&offered)
            ));
        }
        Ok(platform)
    }
}

/// The major part of a version ("7" of "7.9", "2012" of "2012 R2"): runs of one major are
/// written as a range.
fn major(version: &str) -> &str {
    version.split(['.', ' ']).next().unwrap_or(version)
}

/// Versions as people read them: "6.5–6.10, 7.0–7.9", "14.04, 20.10, 22.04 or 24.04".
pub fn describe_versions(versions: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    while start < versions.len() {
        let mut end = start;
        while end + 1 < versions.len()
            && major(versions[end + 1]) == major(versions[start])
            && versions[end + 1].contains('.')
        {
            end += 1;
        }
        if end - start >= 2 {
            parts.push(format!("{}–{}", versions[start], versions[end]));
        } else {
            parts.extend(versions[start..=end].iter().map(|v| (*v).to_owned()));
        }
        start = end + 1;
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    or_list(&parts)
}

/// A version of a platform, one of the catalogue's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OsVersion(String);

impl OsVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A version stored for `platform` (on any architecture): what the database holds was
    /// checked when it was written.
    pub fn stored(platform: OsPlatform, raw: &str) -> Option<Self> {
        platform
            .releases()
            .iter()
            .find(|r| r.version == raw)
            .map(|r| Self(r.version.to_owned()))
    }

    /// The version chosen for `platform` on `architecture`; empty means not specified.
    pub fn check(
        raw: &str,
        platform: OsPlatform,
        architecture: Architecture,
    ) -> Result<Option<Self>, FieldError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let offered = platform.versions_for(architecture);
        if offered.contains(&raw) {
            return Ok(Self::stored(platform, raw));
        }
        let choose = match offered.as_slice() {
            [] => String::new(),
            [one] => format!("; choose {one}"),
            several => format!("; choose one of {}", describe_versions(several)),
        };
        let message = if Self::stored(platform, raw).is_some() {
            format!(
                "System version {raw} of {} is not offered for {}{choose}.",
                platform.label(),
                architecture.as_str()
            )
        } else {
            let shown: String = raw.chars().take(40).collect();
            format!(
                "System version {shown} is not a version of {} on {}{choose}.",
                platform.label(),
                architecture.as_str()
            )
        };
        Err(FieldError::new(field::OS_VERSION, message))
    }
}

/// An image's operating system: its platform (whose family follows) and, if known, its
/// version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OperatingSystem {
    pub platform: OsPlatform,
    pub version: Option<OsVersion>,
}

impl OperatingSystem {
    pub fn family(&self) -> OsFamily {
        self.platform.family()
    }

    pub fn version_label(&self) -> &str {
        self.version.as_ref().map_or(NO_VERSION, OsVersion::as_str)
    }

    /// "Windows Server 2019", or "Ubuntu" without a version.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {}", self.platform.label(), v.as_str()),
            None => self.platform.label().to_owned(),
        }
    }

    /// The three fields as `parse` reads them, or `None` when all three are empty and the
    /// operating system is optional.
    pub fn parse_as(
        requirement: OsRequirement,
        family: &str,
        platform: &str,
        version: &str,
        architecture: Option<Architecture>,
    ) -> Result<Option<Self>, Vec<FieldError>> {
        if requirement == OsRequirement::Optional
            && family.is_empty()
            && platform.is_empty()
            && version.is_empty()
        {
            return Ok(None);
        }
        Self::parse(family, platform, version, architecture).map(Some)
    }

    /// The three fields as one rule: the family, a platform of it offered for the
    /// architecture, and a version of that platform offered for it. `architecture` is
    /// `None` when its own field is wrong. Each error names its field.
    pub fn parse(
        family: &str,
        platform: &str,
        version: &str,
        architecture: Option<Architecture>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let family = OsFamily::parse(family).map_err(|e| errors.push(e)).ok();
        let platform = OsPlatform::check(platform, family, architecture)
            .map_err(|e| errors.push(e))
            .ok();
        let version = match (platform, architecture) {
            (Some(platform), Some(architecture)) => {
                OsVersion::check(version, platform, architecture)
                    .map_err(|e| errors.push(e))
                    .ok()
            }
            _ => None,
        };
        match (platform, version) {
            (Some(platform), Some(version)) if errors.is_empty() => Ok(Self { platform, version }),
            _ => Err(errors),
        }
    }
}

/// The value the database's `os_type` holds for an image's operating system.
pub fn stored_os_type(os: Option<&OperatingSystem>) -> &'static str {
    os.map_or(UNSPECIFIED_OS_TYPE, |os| os.platform.as_str())
}

/// "Linux", or "Not specified".
pub fn family_label(os: Option<&OperatingSystem>) -> &'static str {
    os.map_or(NOT_SPECIFIED, |os| os.family().label())
}

/// "Ubuntu", or "Not specified".
pub fn platform_label(os: Option<&OperatingSystem>) -> &'static str {
    os.map_or(NOT_SPECIFIED, |os| os.platform.label())
}

/// "22.04", or "Not specified".
pub fn version_label(os: Option<&OperatingSystem>) -> &str {
    os.map_or(NOT_SPECIFIED, OperatingSystem::version_label)
}

/// "Windows Server 2019", "Ubuntu", or "Not specified".
pub fn os_label(os: Option<&OperatingSystem>) -> String {
    os.map_or_else(|| NOT_SPECIFIED.to_owned(), OperatingSystem::label)
}

/// The Image List's operating-system filter: a family, or the images whose operating
/// system is not specified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OsFamilyFilter {
    Family(OsFamily),
    NotSpecified,
}

impl OsFamilyFilter {
    pub const ALL: [OsFamilyFilter; 3] = [
        OsFamilyFilter::Family(OsFamily::Linux),
        OsFamilyFilter::Family(OsFamily::Windows),
        OsFamilyFilter::NotSpecified,
    ];

    /// The value in the list's URL (`family=`).
    pub fn as_str(self) -> &'static str {
        match self {
            OsFamilyFilter::Family(family) => family.as_str(),
            OsFamilyFilter::NotSpecified => "none",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OsFamilyFilter::Family(family) => family.label(),
            OsFamilyFilter::NotSpecified => NOT_SPECIFIED,
        }
    }

    pub fn from_value(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }

    /// The family, unless the filter is for images without one.
    pub fn family(self) -> Option<OsFamily> {
        match self {
            OsFamilyFilter::Family(family) => Some(family),
            OsFamilyFilter::NotSpecified => None,
        }
    }
}

/// Which `os_type` values an Image List filter selects: the family's platforms, narrowed to
/// the one platform if it names one, or the value of an image without an operating system.
/// `None` when neither is set (every value).
pub fn selected_os_types(
    family: Option<OsFamilyFilter>,
    platform: Option<OsPlatform>,
) -> Option<Vec<&'static str>> {
    match (family, platform) {
        (None, None) => None,
        (Some(OsFamilyFilter::NotSpecified), None) => Some(vec![UNSPECIFIED_OS_TYPE]),
        (Some(OsFamilyFilter::NotSpecified), Some(_)) => Some(Vec::new()),
        (family, platform) => Some(
            OsPlatform::ALL
                .into_iter()
                .filter(|p| {
                    family
                        .and_then(OsFamilyFilter::family)
                        .is_none_or(|f| p.family() == f)
                })
                .filter(|p| platform.is_none_or(|only| *p == only))
                .map(OsPlatform::as_str)
                .collect(),
        ),
    }
}

/// Every value `os_type` can hold: each platform's, and that of no operating system.
pub fn every_os_type() -> Vec<&'static str> {
    OsPlatform::ALL
        .into_iter()
        .map(OsPlatform::as_str)
        .chain([UNSPECIFIED_OS_TYPE])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Architecture::{Aarch64, X86_64};

    fn parse(
        family: &str,
        platform: &str,
        version: &str,
        arch: Architecture,
    ) -> Result<OperatingSystem, Vec<FieldError>> {
        OperatingSystem::parse(family, platform, version, Some(arch))
    }

    fn only_error(result: Result<OperatingSystem, Vec<FieldError>>) -> FieldError {
        let errors = result.unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn centos_versions_depend_on_the_architecture() {
        let x86: Vec<String> = (5..=10)
            .map(|m| format!("6.{m}"))
            .chain((0..=9).map(|m| format!("7.{m}")))
            .collect();
        assert_eq!(OsPlatform::CentOS.versions_for(X86_64), x86);
        assert_eq!(
            OsPlatform::CentOS.versions_for(Aarch64),
            ["7.6", "7.7", "7.8", "7.9"]
        );
        for version in &x86 {
            let os = parse("linux", "centos", version, X86_64).unwrap();
            assert_eq!(os.version.unwrap().as_str(), version);
            let on_arm = parse("linux", "centos", version, Aarch64);
            assert_eq!(
                on_arm.is_ok(),
                version.as_str() >= "7.6" && version.starts_with('7')
            );
        }
        let e = only_error(parse("linux", "centos", "7.5", Aarch64));
        assert_eq!(e.field, field::OS_VERSION);
        assert_eq!(
            e.message,
            "System version 7.5 of CentOS is not offered for aarch64; choose one of 7.6–7.9."
        );
        let e = only_error(parse("linux", "centos", "6.10", Aarch64));
        assert_eq!(
            e.message,
            "System version 6.10 of CentOS is not offered for aarch64; choose one of 7.6–7.9."
        );
        let e = only_error(parse("linux", "centos", "8", X86_64));
        assert_eq!(
            e.message,
            "System version 8 is not a version of CentOS on x86_64; choose one of 6.5–6.10 or 7.0–7.9."
        );
    }

    #[test]
    fn ubuntu_versions_depend_on_the_architecture() {
        assert_eq!(
            OsPlatform::Ubuntu.versions_for(X86_64),
            ["14.04", "20.10", "22.04", "24.04"]
        );
        assert_eq!(
            OsPlatform::Ubuntu.versions_for(Aarch64),
            ["16.04", "18.04", "22.04", "24.04"]
        );
        assert!(parse("linux", "ubuntu", "16.04", Aarch64).is_ok());
        let e = only_error(parse("linux", "ubuntu", "16.04", X86_64));
        assert_eq!(e.field, field::OS_VERSION);
        assert_eq!(
            e.message,
            "System version 16.04 of Ubuntu is not offered for x86_64; choose one of 14.04, 20.10, 22.04 or 24.04."
        );
        let e = only_error(parse("linux", "ubuntu", "20.10", Aarch64));
        assert!(
            e.message
                .ends_with("choose one of 16.04, 18.04, 22.04 or 24.04.")
        );
    }

    #[test]
    fn enterprise_linux_offers_8_and_9_on_both_architectures() {
        for platform in ["alma", "oracle", "rhel", "rocky"] {
            for arch in Architecture::ALL {
                for version in ["8", "9"] {
                    assert!(parse("linux", platform, version, arch).is_ok());
                }
                let e = only_error(parse("linux", platform, "7", arch));
                assert_eq!(e.field, field::OS_VERSION);
                assert!(
                    e.message.ends_with("choose one of 8 or 9."),
                    "{}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn windows_is_x86_64_only() {
        assert_eq!(
            OsPlatform::WindowsServer.versions_for(X86_64),
            [
                "2008", "2008 R2", "2012", "2012 R2", "2016", "2019", "2022", "2025"
            ]
        );
        assert_eq!(
            OsPlatform::Windows.versions_for(X86_64),
            ["7", "8", "8.1", "10", "11"]
        );
        let os = parse("windows", "windows-server", "2019", X86_64).unwrap();
        assert_eq!(os.family(), OsFamily::Windows);
        assert_eq!(os.label(), "Windows Server 2019");
        for platform in ["windows-server", "windows"] {
            let e = only_error(parse("windows", platform, "", Aarch64));
            assert_eq!(e.field, field::OS_PLATFORM);
            assert!(
                e.message
                    .ends_with("is offered for x86_64 only; choose Architecture x86_64.")
            );
        }
        let e = only_error(parse("windows", "windows", "2019", X86_64));
        assert_eq!(
            e.message,
            "System version 2019 is not a version of Windows on x86_64; choose one of 7, 8, 8.1, 10 or 11."
        );
    }

    #[test]
    fn the_version_is_optional() {
        for platform in OsPlatform::ALL {
            let os = parse(
                platform.family().as_str(),
                platform.as_str(),
                "",
                platform.architectures()[0],
            )
            .unwrap();
            assert_eq!(os.version, None);
            assert_eq!(os.version_label(), NO_VERSION);
            assert_eq!(os.label(), platform.label());
        }
    }

    #[test]
    fn a_platform_belongs_to_its_family() {
        let e = only_error(parse("linux", "windows-server", "2019", X86_64));
        assert_eq!(e.field, field::OS_PLATFORM);
        assert_eq!(
            e.message,
            "System platform Windows Server is a Windows platform; choose Operating system Windows or a Linux platform (Alma Linux, CentOS, Oracle Linux, RHEL, Rocky Linux or Ubuntu)."
        );
        let e = only_error(parse("windows", "ubuntu", "", X86_64));
        assert!(e.message.contains("(Windows Server or Windows)"));
        for family in OsFamily::ALL {
            assert!(family.platforms().all(|p| p.family() == family));
        }
        assert_eq!(OsFamily::Linux.platforms().count(), 6);
    }

    #[test]
    fn missing_and_unknown_values_name_their_field() {
        let errors = parse("", "", "", X86_64).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, [field::OS_FAMILY, field::OS_PLATFORM]);
        assert_eq!(
            errors[0].message,
            "Select an operating system: Linux or Windows."
        );
        assert_eq!(errors[1].message, "Select a system platform.");
        let e = only_error(parse("macos", "ubuntu", "", X86_64));
        assert_eq!(e.field, field::OS_FAMILY);
        assert_eq!(e.message, "Operating system must be Linux or Windows.");
        let e = only_error(parse("linux", "debian", "", X86_64));
        assert_eq!(e.field, field::OS_PLATFORM);
        assert_eq!(
            e.message,
            "System platform must be one of Alma Linux, CentOS, Oracle Linux, RHEL, Rocky Linux, Ubuntu, Windows Server or Windows."
        );
        // Without a valid architecture only the architecture's own error stands.
        assert_eq!(
            OperatingSystem::parse("linux", "centos", "6.5", None),
            Err(vec![])
        );
    }

    #[test]
    fn stored_values_round_trip() {
        for platform in OsPlatform::ALL {
            assert_eq!(OsPlatform::from_value(platform.as_str()), Some(platform));
            for release in platform.releases() {
                let version = OsVersion::stored(platform, release.version).unwrap();
                assert_eq!(version.as_str(), release.version);
            }
        }
        assert_eq!(OsVersion::stored(OsPlatform::Ubuntu, "7.9"), None);
    }

    #[test]
    fn filters_select_the_family_or_one_platform() {
        let windows = Some(OsFamilyFilter::Family(OsFamily::Windows));
        assert_eq!(selected_os_types(None, None), None);
        assert_eq!(
            selected_os_types(windows, None),
            Some(vec!["windows-server", "windows"])
        );
        assert_eq!(
            selected_os_types(None, Some(OsPlatform::Rocky)),
            Some(vec!["rocky"])
        );
        assert_eq!(
            selected_os_types(windows, Some(OsPlatform::Rocky)),
            Some(vec![])
        );
        let none = Some(OsFamilyFilter::NotSpecified);
        assert_eq!(
            selected_os_types(none, None),
            Some(vec![UNSPECIFIED_OS_TYPE])
        );
        assert_eq!(
            selected_os_types(none, Some(OsPlatform::Rocky)),
            Some(vec![])
        );
        assert_eq!(every_os_type().len(), OsPlatform::ALL.len() + 1);
        for filter in OsFamilyFilter::ALL {
            assert_eq!(OsFamilyFilter::from_value(filter.as_str()), Some(filter));
        }
    }

    #[test]
    fn an_optional_operating_system_may_be_left_out_whole() {
        let optional =
            |f, p, v| OperatingSystem::parse_as(OsRequirement::Optional, f, p, v, Some(X86_64));
        assert_eq!(optional("", "", ""), Ok(None));
        assert_eq!(
            optional("linux", "ubuntu", "22.04")
                .unwrap()
                .unwrap()
                .label(),
            "Ubuntu 22.04"
        );
        // Half an operating system is not none: the missing field is asked for.
        let e = optional("linux", "", "").unwrap_err();
        assert_eq!(e[0].message, "Select a system platform.");
        let required = OperatingSystem::parse_as(OsRequirement::Required, "", "", "", Some(X86_64));
        assert_eq!(required.unwrap_err().len(), 2);
        assert_eq!(OsRequirement::to_edit(None), OsRequirement::Optional);
        assert_eq!(os_label(None), NOT_SPECIFIED);
        assert_eq!(family_label(None), "Not specified");
        assert_eq!(stored_os_type(None), UNSPECIFIED_OS_TYPE);
    }

    #[test]
    fn versions_read_as_ranges_within_a_major_release() {
        assert_eq!(describe_versions(&["8", "9"]), "8 or 9");
        assert_eq!(
            describe_versions(&OsPlatform::CentOS.versions_for(X86_64)),
            "6.5–6.10 or 7.0–7.9"
        );
        assert_eq!(describe_versions(&["7.8", "7.9"]), "7.8 or 7.9");
    }
}
