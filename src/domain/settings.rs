//! What the browser needs to know about the console's configuration.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleSettings {
    /// Storage price per GB-month, for the cost estimates.
    pub price_per_gb_month: f64,
    pub currency: String,
    /// The largest image an import may bring in.
    pub import_size_limit_bytes: u64,
    /// What Create Image's Convert to starts at (`CONVERT_TO`).
    #[serde(default)]
    pub convert_to_default: super::conversion::ConvertTo,
}
