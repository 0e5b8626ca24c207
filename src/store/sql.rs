//! Building SQL whose shape depends on the request: text plus the values it binds, numbered
//! `$1…` as both databases accept.

use sqlx::Arguments;
use sqlx::any::AnyArguments;

/// A value bound into a dynamically built query.
#[derive(Clone, Debug)]
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// SQL text with its values.
#[derive(Clone, Debug, Default)]
pub(super) struct QueryParts {
    pub sql: String,
    binds: Vec<Bind>,
}

impl QueryParts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value and returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    pub fn text(&mut self, value: impl Into<String>) -> String {
        self.bind(Bind::Text(value.into()))
    }

    pub fn int(&mut self, value: i64) -> String {
        self.bind(Bind::Int(value))
    }

    pub fn arguments(&self) -> AnyArguments<'static> {
        let mut args = AnyArguments::default();
        for bind in &self.binds {
            // Encoding plain text and integers into AnyArguments cannot fail.
            let _ = match bind {
                Bind::Text(t) => args.add(t.clone()),
                Bind::Int(i) => args.add(*i),
            };
        }
        args
    }
}
