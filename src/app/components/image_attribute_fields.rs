//! The image attributes the Create Image and Edit forms share: the operating system
//! (family, platform, version), architecture, boot mode, Minimum Disk and RAM, and features.

use leptos::prelude::*;

use super::form_field::{FieldState, RadioGroup, SelectField, TextField, select_options};
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::image_spec::{MinDiskGb, MinRamGb, field};
use crate::domain::os_catalogue::{
    self, OperatingSystem, OsFamily, OsPlatform, OsRequirement, OsVersion, label,
};

/// The state of those fields.
#[derive(Clone, Copy)]
pub struct AttributeFields {
    pub os_family: FieldState,
    pub os_platform: FieldState,
    pub os_version: FieldState,
    pub min_disk: FieldState,
    pub min_ram: FieldState,
    pub architecture: FieldState,
    pub boot_mode: FieldState,
    pub cloud_init: RwSignal<bool>,
    pub qemu_guest_agent: RwSignal<bool>,
    /// Whether the operating system must be chosen (Edit of an image the image API made
    /// without one may leave it unspecified).
    pub os_requirement: OsRequirement,
}

impl AttributeFields {
    /// Fields holding the given values (no operating system asks the user to pick one).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        form: &'static str,
        os: Option<&OperatingSystem>,
        os_requirement: OsRequirement,
        min_disk: u64,
        min_ram: u64,
        architecture: Architecture,
        boot_mode: BootMode,
        features: Features,
    ) -> Self {
        let family = os.map_or("", |os| os.family().as_str());
        let platform = os.map_or("", |os| os.platform.as_str());
        let version = os
            .and_then(|os| os.version.as_ref())
            .map_or("", OsVersion::as_str);
        Self {
            os_family: FieldState::new(form, os_catalogue::field::OS_FAMILY, family),
            os_platform: FieldState::new(form, os_catalogue::field::OS_PLATFORM, platform),
            os_version: FieldState::new(form, os_catalogue::field::OS_VERSION, version),
            min_disk: FieldState::new(form, field::MIN_DISK, &min_disk.to_string()),
            min_ram: FieldState::new(form, field::MIN_RAM, &min_ram.to_string()),
            architecture: FieldState::new(form, "architecture", architecture.as_str()),
            boot_mode: FieldState::new(form, "boot_mode", boot_mode.as_str()),
            cloud_init: RwSignal::new(features.cloud_init),
            qemu_guest_agent: RwSignal::new(features.qemu_guest_agent),
            os_requirement,
        }
    }

    /// The fields with values, for marking them visited and placing server errors.
    pub fn states(self) -> [FieldState; 7] {
        [
            self.os_family,
            self.os_platform,
            self.os_version,
            self.architecture,
            self.boot_mode,
            self.min_disk,
            self.min_ram,
        ]
    }

    /// The operating system as chosen so far ("Windows Server 2019"), for summaries.
    pub fn os_label(self) -> Option<String> {
        OperatingSystem::parse(
            &self.os_family.value.get(),
            &self.os_platform.value.get(),
            &self.os_version.value.get(),
            Architecture::parse(&self.architecture.value.get()).ok(),
        )
        .ok()
        .map(|os| os.label())
    }
}

/// The fields themselves.
#[component]
pub fn ImageAttributeFields(fields: AttributeFields) -> impl IntoView {
    let AttributeFields {
        os_family,
        os_platform,
        os_version,
        min_disk,
        min_ram,
        architecture,
        boot_mode,
        cloud_init,
        qemu_guest_agent,
        os_requirement,
    } = fields;
    let optional = os_requirement == OsRequirement::Optional;
    // With the operating system optional, leaving both fields empty keeps it Not specified.
    let os_left_out =
        move || optional && os_family.value.get().is_empty() && os_platform.value.get().is_empty();
    let chosen_family = move || OsFamily::from_value(&os_family.value.get());
    let chosen_platform = move || OsPlatform::from_value(&os_platform.value.get());
    let chosen_architecture = move || Architecture::parse(&architecture.value.get()).ok();
    // A platform belongs to one operating system, so choosing it chooses that system. Only a
    // change of platform does this: a family chosen afterwards stays, and the platform's
    // error says it does not belong.
    Effect::new(move |_| {
        let Some(platform) = chosen_platform() else {
            return;
        };
        let family = platform.family().as_str();
        if os_family.value.get_untracked() != family {
            os_family.value.set(family.to_owned());
            os_family.server_error.set(None);
        }
    });
    let family_options: Vec<(&str, &str)> = OsFamily::ALL
        .iter()
        .map(|f| (f.as_str(), f.label()))
        .collect();
    // The family's platforms, and the chosen one even if it is not of the family (its error
    // says why).
    let platform_options = Signal::derive(move || {
        let family = chosen_family();
        let chosen = chosen_platform();
        OsPlatform::ALL
            .into_iter()
            .filter(|p| family.is_none_or(|f| p.family() == f) || Some(*p) == chosen)
            .map(|p| (p.as_str().to_owned(), p.label().to_owned()))
            .collect::<Vec<_>>()
    });
    // The versions offered for the platform on the architecture, and the chosen one even if
    // it is not offered there (its error says why).
    let version_options = Signal::derive(move || {
        let (Some(platform), Some(arch)) = (chosen_platform(), chosen_architecture()) else {
            return Vec::new();
        };
        let chosen = os_version.value.get();
        let offered = platform.versions_for(arch);
        let mut options: Vec<(String, String)> = offered
            .iter()
            .map(|v| ((*v).to_owned(), (*v).to_owned()))
            .collect();
        if !chosen.is_empty() && !offered.contains(&chosen.as_str()) {
            let text = format!("{chosen} (not offered for {})", arch.as_str());
            options.push((chosen, text));
        }
        options
    });
    let platform_error = os_platform.message(move |raw| {
        if os_left_out() {
            return Ok(());
        }
        OsPlatform::check(raw, chosen_family(), chosen_architecture()).map(|_| ())
    });
    let family_error = os_family.message(move |raw| {
        if os_left_out() {
            return Ok(());
        }
        OsFamily::parse(raw).map(|_| ())
    });
    let (family_hint, family_placeholder, platform_placeholder) = if optional {
        (
            "Not specified: the image API created this image without one. Choose Linux or Windows, as installed in the image file.",
            os_catalogue::NOT_SPECIFIED,
            os_catalogue::NOT_SPECIFIED,
        )
    } else {
        (
            "Linux or Windows, as installed in the image file.",
            "Select an operating system",
            "Select a system platform",
        )
    };
    let version_error =
        os_version.message(
            move |raw| match (chosen_platform(), chosen_architecture()) {
                (Some(platform), Some(arch)) => OsVersion::check(raw, platform, arch).map(|_| ()),
                _ => Ok(()),
            },
        );
    let architecture_options: Vec<(&str, &str)> = Architecture::ALL
        .iter()
        .map(|a| (a.as_str(), a.as_str()))
        .collect();
    let cloud_init_id = format!("{}-cloud_init", os_family.form);
    let agent_id = format!("{}-qemu_guest_agent", os_family.form);
    view! {
        <div class="field-row">
            <SelectField
                label=label::OS_FAMILY
                field=os_family
                options=select_options(&family_options)
                error=family_error
                hint=family_hint
                placeholder=family_placeholder
                required=!optional
            />
            <SelectField
                label="Architecture"
                field=architecture
                options=select_options(&architecture_options)
                error=architecture.message(Architecture::parse)
                hint="The CPU the image was built for."
                placeholder="Select an architecture"
            />
        </div>
        <div class="field-row">
            <SelectField
                label=label::OS_PLATFORM
                field=os_platform
                options=platform_options
                error=platform_error
                hint="The distribution, or Windows Server or Windows."
                placeholder=platform_placeholder
                required=!optional
            />
            <SelectField
                label=label::OS_VERSION
                field=os_version
                options=version_options
                error=version_error
                hint="The versions offered depend on the platform and the architecture."
                placeholder=os_catalogue::NO_VERSION
            />
        </div>
        <RadioGroup
            legend="Boot mode"
            field=boot_mode
            options=BootMode::ALL.iter().map(|b| (b.as_str(), b.label(), "")).collect()
            error=boot_mode.message(BootMode::parse)
        />
        <div class="field-row">
            <TextField
                label="Minimum Disk (GB)"
                field=min_disk
                error=min_disk.message(MinDiskGb::parse)
                hint="0 to 12,288 GB."
                inputmode="numeric"
                required=true
            />
            <TextField
                label="Minimum RAM (GB)"
                field=min_ram
                error=min_ram.message(MinRamGb::parse)
                hint="0 to 2,097,151 GB."
                inputmode="numeric"
                required=true
            />
        </div>
        <fieldset class="field">
            <legend>"Features"</legend>
            <div class="checkbox">
                <input type="checkbox" id=cloud_init_id.clone() name="cloud_init" bind:checked=cloud_init />
                <label for=cloud_init_id>{Features::CLOUD_INIT}</label>
            </div>
            <div class="checkbox">
                <input type="checkbox" id=agent_id.clone() name="qemu_guest_agent" bind:checked=qemu_guest_agent />
                <label for=agent_id>{Features::QEMU_GUEST_AGENT}</label>
            </div>
        </fieldset>
    }
}
