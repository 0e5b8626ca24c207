//! Image attributes from the import guides: CPU architecture, boot mode, guest features.

use serde::{Deserialize, Serialize};

use super::validation::FieldError;

pub mod field {
    pub const ARCHITECTURE: &str = "architecture";
    pub const BOOT_MODE: &str = "boot_mode";
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    #[default]
    X86_64,
    Aarch64,
}

impl Architecture {
    pub const ALL: [Architecture; 2] = [Architecture::X86_64, Architecture::Aarch64];

    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Aarch64 => "aarch64",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == raw)
            .ok_or_else(|| {
                FieldError::new(
                    field::ARCHITECTURE,
                    "Architecture must be x86_64 or aarch64.",
                )
            })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BootMode {
    #[default]
    Bios,
    Uefi,
}

impl BootMode {
    pub const ALL: [BootMode; 2] = [BootMode::Bios, BootMode::Uefi];

    pub fn as_str(self) -> &'static str {
        match self {
            BootMode::Bios => "bios",
            BootMode::Uefi => "uefi",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BootMode::Bios => "BIOS",
            BootMode::Uefi => "UEFI",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == raw)
            .ok_or_else(|| FieldError::new(field::BOOT_MODE, "Boot mode must be BIOS or UEFI."))
    }
}

/// Guest software the image supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Features {
    pub cloud_init: bool,
    pub qemu_guest_agent: bool,
}

impl Features {
    pub const CLOUD_INIT: &str = "cloud-init";
    pub const QEMU_GUEST_AGENT: &str = "qemu-guest-agent";

    /// The stored form: a comma-separated list in a fixed order.
    pub fn to_db(self) -> String {
        let mut names = Vec::new();
        if self.cloud_init {
            names.push(Self::CLOUD_INIT);
        }
        if self.qemu_guest_agent {
            names.push(Self::QEMU_GUEST_AGENT);
        }
        names.join(",")
    }

    pub fn from_db(raw: &str) -> Self {
        let has = |name: &str| raw.split(',').any(|n| n == name);
        Self {
            cloud_init: has(Self::CLOUD_INIT),
            qemu_guest_agent: has(Self::QEMU_GUEST_AGENT),
        }
    }

    /// "cloud-init, qemu-guest-agent", or "None".
    pub fn label(self) -> String {
        let text = self.to_db().replace(',', ", ");
        if text.is_empty() {
            "None".to_owned()
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for a in Architecture::ALL {
            assert_eq!(Architecture::parse(a.as_str()), Ok(a));
        }
        for b in BootMode::ALL {
            assert_eq!(BootMode::parse(b.as_str()), Ok(b));
        }
        assert!(Architecture::parse("i386").is_err());
        assert!(BootMode::parse("BIOS").is_err());
        let all = Features {
            cloud_init: true,
            qemu_guest_agent: true,
        };
        assert_eq!(Features::from_db(&all.to_db()), all);
        assert_eq!(Features::from_db(""), Features::default());
        assert_eq!(all.label(), "cloud-init, qemu-guest-agent");
        assert_eq!(Features::default().label(), "None");
    }
}
