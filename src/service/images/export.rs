//! The Image List as CSV: the rows the list shows with its filters, every page, with cells
//! that a spreadsheet could read as a formula made inert.

use super::*;
use crate::domain::os_catalogue;

/// Cells a spreadsheet would run as a formula start with one of these (OWASP CSV injection).
const FORMULA_PREFIXES: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Makes a cell inert in spreadsheets by prefixing an apostrophe where it could be a formula.
pub fn neutralize_csv_cell(cell: &str) -> String {
    if cell.starts_with(FORMULA_PREFIXES) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

impl Services {
    /// The images matching the query's search and filters, as CSV (RFC 4180, UTF-8), with
    /// cells that a spreadsheet could run as formulas neutralised.
    #[tracing::instrument(skip_all, fields(account.id = %actor.account_id))]
    pub async fn export_images_csv(
        &self,
        actor: &Actor,
        query: &ListQuery,
    ) -> ServiceResult<Vec<u8>> {
        let rows = self
            .store()
            .list_matching_images(&actor.account_id, query, self.clock_ms())
            .await?;
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let header = [
            "Name",
            "Resource ID",
            "Status",
            os_catalogue::label::OS_FAMILY,
            os_catalogue::label::OS_PLATFORM,
            os_catalogue::label::OS_VERSION,
            "Visibility",
            "Protected",
            "Size (bytes)",
            "Virtual size (bytes)",
            "Disk format",
            "Minimum Disk (GB)",
            "Minimum RAM (GB)",
            "Architecture",
            "Boot mode",
            "Features",
            "Created (UTC)",
            "Creator",
            "Description",
            "Owner Account ID",
            "Deprecate on (UTC)",
            "Hidden",
            "Signature",
        ];
        let csv_error =
            |e: csv::Error| ServiceError::Internal(anyhow::Error::new(e).context("writing CSV"));
        writer.write_record(header).map_err(csv_error)?;
        for row in rows {
            // The owner's user names are not the viewer's business: a shared image names the
            // owner account instead.
            let creator = if row.account_id == actor.account_id {
                row.created_by
            } else {
                other_account(&row.account_id)
            };
            let record = [
                row.attributes.name,
                row.id,
                row.status.label().to_owned(),
                os_catalogue::family_label(row.attributes.os.as_ref()).to_owned(),
                os_catalogue::platform_label(row.attributes.os.as_ref()).to_owned(),
                os_catalogue::version_label(row.attributes.os.as_ref()).to_owned(),
                row.visibility.label().to_owned(),
                protected_label(row.attributes.protected).to_owned(),
                row.size_bytes.map(|b| b.to_string()).unwrap_or_default(),
                row.virtual_size_bytes
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                row.disk_format
                    .map(|f| f.as_str().to_owned())
                    .unwrap_or_default(),
                row.attributes.min_disk_gb.to_string(),
                row.attributes.min_ram_gb.to_string(),
                row.attributes.architecture.as_str().to_owned(),
                row.attributes.boot_mode.label().to_owned(),
                row.attributes.features.label(),
                format_rfc3339(row.created_at_ms),
                creator,
                row.attributes.description,
                row.account_id,
                row.deprecate_at_ms.map(format_rfc3339).unwrap_or_default(),
                if row.os_hidden { "Yes" } else { "No" }.to_owned(),
                if row.verified_signature.is_some() {
                    "Verified"
                } else {
                    ""
                }
                .to_owned(),
            ];
            writer
                .write_record(record.iter().map(|cell| neutralize_csv_cell(cell)))
                .map_err(csv_error)?;
        }
        writer
            .into_inner()
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("finishing CSV: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_look_like_formulas_are_neutralised() {
        assert_eq!(neutralize_csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(neutralize_csv_cell("+1"), "'+1");
        assert_eq!(neutralize_csv_cell("-2"), "'-2");
        assert_eq!(neutralize_csv_cell("@cmd"), "'@cmd");
        assert_eq!(neutralize_csv_cell("\tx"), "'\tx");
        assert_eq!(neutralize_csv_cell("plain"), "plain");
        assert_eq!(neutralize_csv_cell("a=b"), "a=b");
        assert_eq!(neutralize_csv_cell(""), "");
    }
}
