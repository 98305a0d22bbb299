//! The part of an agent's `permissions` the sandbox reads: `network` and
//! `limits`. Other keys belong to skills and are left alone.
//!
//! ```json
//! { "network": "none" | "all" | [443, 8080],
//!   "limits": { "openFiles": 1024, "processes": 512, "fileSizeMb": 1024, "cpuSeconds": 600 } }
//! ```

use crate::policy::{Limits, Network};
use serde_json::Value;
use std::collections::BTreeSet;

/// Most ports one agent may list.
pub const MAX_PORTS: usize = 256;

/// Largest value of each limit (a mistake, not a grant, above it).
const MAX_LIMIT: u64 = 1 << 40;

/// What an agent's bash is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// `permissions.network`.
    pub network: Network,
    /// `permissions.limits`, over the defaults.
    pub limits: Limits,
}

impl Grants {
    /// Reads `permissions` (absent: the defaults). The error names the field
    /// and the accepted values.
    pub fn from_permissions(permissions: Option<&Value>) -> Result<Grants, String> {
        let Some(v) = permissions else {
            return Ok(Grants::default());
        };
        let Some(obj) = v.as_object() else {
            return Err("`permissions` must be an object".into());
        };
        let network = match obj.get("network") {
            None => Network::None,
            Some(v) => network(v)?,
        };
        let limits = match obj.get("limits") {
            None => Limits::default(),
            Some(v) => {
                let l: Limits = serde_json::from_value(v.clone()).map_err(|e| {
                    format!("`permissions.limits`: {e} (fields: openFiles, processes, fileSizeMb, cpuSeconds)")
                })?;
                for (name, value) in [
                    ("openFiles", l.open_files),
                    ("processes", l.processes),
                    ("fileSizeMb", l.file_size_mb),
                    ("cpuSeconds", l.cpu_seconds),
                ] {
                    if value == 0 || value > MAX_LIMIT {
                        return Err(format!(
                            "`permissions.limits.{name}` must be between 1 and {MAX_LIMIT}"
                        ));
                    }
                }
                l
            }
        };
        Ok(Grants { network, limits })
    }
}

fn network(v: &Value) -> Result<Network, String> {
    const HELP: &str =
        "`permissions.network` must be \"none\", \"all\" or a list of TCP ports (1-65535)";
    match v {
        Value::String(s) if s == "none" => Ok(Network::None),
        Value::String(s) if s == "all" => Ok(Network::All),
        Value::Array(items) => {
            if items.len() > MAX_PORTS {
                return Err(format!("{HELP}, at most {MAX_PORTS}"));
            }
            let ports = items
                .iter()
                .map(|p| {
                    p.as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("{HELP}; {p} is not a port"))
                })
                .collect::<Result<BTreeSet<u16>, String>>()?;
            Ok(Network::Ports(ports))
        }
        other => Err(format!("{HELP}; got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_documented_shapes() {
        let g = Grants::from_permissions(Some(&json!({"network": [443, 80, 443], "other": 1})))
            .expect("ports");
        assert_eq!(g.network, Network::Ports([80, 443].into()));
        let g = Grants::from_permissions(Some(
            &json!({"network": "all", "limits": {"openFiles": 64}}),
        ))
        .expect("all");
        assert_eq!(g.network, Network::All);
        assert_eq!(g.limits.open_files, 64);
        assert_eq!(g.limits.processes, Limits::default().processes);
        assert_eq!(
            Grants::from_permissions(None).expect("none"),
            Grants::default()
        );
    }

    #[test]
    fn refuses_bad_input_naming_the_field() {
        for bad in [
            json!("all"),
            json!({"network": "some"}),
            json!({"network": [0]}),
            json!({"network": [70000]}),
            json!({"network": ["80"]}),
            json!({"network": 80}),
            json!({"limits": {"openFiles": 0}}),
            json!({"limits": {"memory": 5}}),
            json!({"limits": {"cpuSeconds": -1}}),
        ] {
            let e = Grants::from_permissions(Some(&bad)).expect_err(&bad.to_string());
            assert!(e.contains("permissions"), "{bad}: {e}");
        }
    }
}
