//! The image attributes the Create Image and Edit forms share: OS type, Minimum Disk and
//! RAM, architecture, boot mode and features.

use leptos::prelude::*;

use super::form_field::{FieldState, RadioGroup, SelectField, TextField};
use crate::domain::attributes::{Architecture, BootMode, Features};
use crate::domain::image_spec::{MinDiskGb, MinRamGb, OsType, field};

/// The state of those fields.
#[derive(Clone, Copy)]
pub struct AttributeFields {
    pub os_type: FieldState,
    pub min_disk: FieldState,
    pub min_ram: FieldState,
    pub architecture: FieldState,
    pub boot_mode: FieldState,
    pub cloud_init: RwSignal<bool>,
    pub qemu_guest_agent: RwSignal<bool>,
}

impl AttributeFields {
    /// Fields holding the given values (an empty OS type asks the user to pick one).
    pub fn new(
        form: &'static str,
        os_type: &str,
        min_disk: u64,
        min_ram: u64,
        architecture: Architecture,
        boot_mode: BootMode,
        features: Features,
    ) -> Self {
        Self {
            os_type: FieldState::new(form, field::OS_TYPE, os_type),
            min_disk: FieldState::new(form, field::MIN_DISK, &min_disk.to_string()),
            min_ram: FieldState::new(form, field::MIN_RAM, &min_ram.to_string()),
            architecture: FieldState::new(form, "architecture", architecture.as_str()),
            boot_mode: FieldState::new(form, "boot_mode", boot_mode.as_str()),
            cloud_init: RwSignal::new(features.cloud_init),
            qemu_guest_agent: RwSignal::new(features.qemu_guest_agent),
        }
    }

    /// The text fields, for marking them visited and placing server errors.
    pub fn states(self) -> [FieldState; 5] {
        [
            self.os_type,
            self.min_disk,
            self.min_ram,
            self.architecture,
            self.boot_mode,
        ]
    }
}

/// The fields themselves.
#[component]
pub fn ImageAttributeFields(fields: AttributeFields) -> impl IntoView {
    let AttributeFields {
        os_type,
        min_disk,
        min_ram,
        architecture,
        boot_mode,
        cloud_init,
        qemu_guest_agent,
    } = fields;
    let os_options = OsType::ALL
        .iter()
        .map(|os| (os.as_str(), os.label()))
        .collect::<Vec<_>>();
    let cloud_init_id = format!("{}-cloud_init", os_type.form);
    let agent_id = format!("{}-qemu_guest_agent", os_type.form);
    view! {
        <SelectField
            label="OS type"
            field=os_type
            options=os_options
            error=os_type.message(OsType::parse)
            hint="The operating system in the image file."
            placeholder="Select an OS type"
            required=true
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
        <div class="field-row">
            <SelectField
                label="Architecture"
                field=architecture
                options=Architecture::ALL.iter().map(|a| (a.as_str(), a.as_str())).collect()
                error=architecture.message(Architecture::parse)
                placeholder="Select an architecture"
            />
            <RadioGroup
                legend="Boot mode"
                field=boot_mode
                options=BootMode::ALL.iter().map(|b| (b.as_str(), b.label(), "")).collect()
                error=boot_mode.message(BootMode::parse)
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
