//! The Embedded Metric Format, by hand: a few lines of serde_json instead of a dependency
//! (no Rust EMF crate is in the package lists). The shape, from CloudWatch's
//! specification:
//!
//! ```json
//! {"_aws": {"Timestamp": 1700000000000,
//!           "CloudWatchMetrics": [{"Namespace": "Shiplane",
//!                                  "Dimensions": [["Service", "Environment"], ["Environment"]],
//!                                  "Metrics": [{"Name": "LeadTime", "Unit": "Seconds"}]}]},
//!  "Service": "api", "Environment": "prod", "LeadTime": 1520.5, "release": "01J…"}
//! ```
//!
//! Dimension values are strings at the root; metric values are numbers at the root;
//! anything else at the root is a property, searchable in Logs Insights but not a metric.

use serde_json::{Map, Value, json};

use crate::release::Timestamp;

/// The CloudWatch units Shiplane's metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    /// The spelling CloudWatch expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &'static str, unit: Unit, value: f64) -> Metric {
        Metric { name, unit, value }
    }

    /// One occurrence.
    pub fn count(name: &'static str) -> Metric {
        Metric::new(name, Unit::Count, 1.0)
    }
}

/// Metrics measured at one time for one set of dimensions, with properties for context.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub timestamp: Timestamp,
    /// Name and value, most specific last dropped: `[Service, Environment]` is published
    /// as both `[Service, Environment]` and `[Environment]` (totals per environment).
    pub dimensions: Vec<(String, String)>,
    pub metrics: Vec<Metric>,
    pub properties: Map<String, Value>,
}

impl Record {
    /// The dimension sets published: all the dimensions, and the last one alone.
    pub fn dimension_sets(&self) -> Vec<Vec<String>> {
        let all: Vec<String> = self.dimensions.iter().map(|(n, _)| n.clone()).collect();
        let mut sets = vec![all.clone()];
        if all.len() > 1
            && let Some(last) = all.last()
        {
            sets.push(vec![last.clone()]);
        }
        sets
    }

    /// The EMF document: one line of JSON for the log.
    pub fn to_emf(&self, namespace: &str) -> Value {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for m in &self.metrics {
            root.insert(m.name.to_string(), json!(m.value));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp.0,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": self.dimension_sets(),
                    "Metrics": self
                        .metrics
                        .iter()
                        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        Value::Object(root)
    }
}
